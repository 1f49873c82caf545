namespace VirtFs.VhostUser;

/// <summary>
/// Ways a driver can break the split-virtqueue rules (virtio 1.2, 2.7). Any of them marks the queue broken
/// (VIRTIO NEEDS_RESET semantics): processing stops, nothing is written outside validated ranges.
/// </summary>
public enum QueueError
{
    None = 0,
    RingAddressInvalid,
    AvailIndexTooFarAhead,
    HeadOutOfRange,
    NextOutOfRange,
    ChainTooLong,
    IndirectNotNegotiated,
    IndirectNested,
    IndirectWithNext,
    IndirectBadLength,
    IndirectAddressInvalid,
    DescriptorAddressInvalid,
    ReadableAfterWritable,
    ChainTooLarge,
    TooManySegments,
}

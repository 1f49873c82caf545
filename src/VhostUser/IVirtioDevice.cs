namespace VirtFs.VhostUser;

/// <summary>
/// What a virtio device implementation provides to the vhost-user backend. The backend owns the
/// front-end socket, guest memory and the rings; the device only sees <see cref="DescriptorChain"/>s.
/// </summary>
public interface IVirtioDevice
{
    /// <summary>
    /// Device-type feature bits (for 9P: bit 0, VIRTIO_9P_MOUNT_TAG). The backend adds VIRTIO_F_VERSION_1,
    /// VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX and VHOST_USER_F_PROTOCOL_FEATURES itself.
    /// </summary>
    ulong DeviceFeatures { get; }

    /// <summary>Number of virtqueues the device uses (9P: 1).</summary>
    int QueueCount { get; }

    /// <summary>Device config space (9P: le16 tag_len + tag bytes). Read on every GET_CONFIG.</summary>
    ReadOnlyMemory<byte> Config { get; }

    /// <summary>
    /// Called on the queue thread for each available descriptor chain. Must not block. Ownership passes to the
    /// device, which calls <see cref="DescriptorChain.Complete"/> exactly once, from any thread, possibly out of order.
    /// </summary>
    void HandleRequest(DescriptorChain request);

    /// <summary>The front-end stopped or reset the device (GET_VRING_BASE / RESET / disconnect). Default: nothing.</summary>
    void OnStopped() { }
}

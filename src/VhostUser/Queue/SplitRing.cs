using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace VirtFs.VhostUser;

/// <summary>
/// Ring logic of one split virtqueue (virtio 1.2, 2.7) over translated ring pointers. Reads descriptors by
/// copying each one out of guest memory once and validating the copy. Not thread-safe by itself: the avail side
/// (<see cref="TryPop"/>, <see cref="EnableNotification"/>) belongs to the queue thread; the used side
/// (<see cref="AddUsed"/>, <see cref="ShouldNotify"/>) must be called under the owner's used-ring lock.
/// The <see cref="GuestMemory"/> the pointers came from must be held alive by the caller.
/// </summary>
internal sealed unsafe class SplitRing
{
    public const ushort DescFlagNext = 1;
    public const ushort DescFlagWrite = 2;
    public const ushort DescFlagIndirect = 4;
    public const ushort AvailFlagNoInterrupt = 1;
    public const int DescriptorSize = 16;
    /// <summary>QEMU's VIRTQUEUE_MAX_SIZE bounds an indirect table too (Linux may exceed the queue size there).</summary>
    public const int MaxIndirectDescriptors = 1024;
    /// <summary>Bound on pieces per chain (descriptors x region splits), so a hostile chain cannot grow our arrays.</summary>
    public const int MaxSegments = 4096;
    /// <summary>virtio 1.2, 2.7.5: the total length of a chain fits in 32 bits.</summary>
    public const ulong MaxChainBytes = 1UL << 32;

    private readonly GuestMemory _memory;
    private readonly byte* _desc;
    private readonly byte* _avail;
    private readonly byte* _used;
    private readonly ushort _size;
    private readonly bool _eventIdx;
    private readonly bool _indirect;

    private ushort _lastAvail;
    private ushort _usedIdx;
    private ushort _signalledUsed;
    private bool _signalledValid;

    private SplitRing(GuestMemory memory, nint desc, nint avail, nint used, ushort size, bool eventIdx, bool indirect)
    {
        _memory = memory;
        _desc = (byte*)desc;
        _avail = (byte*)avail;
        _used = (byte*)used;
        _size = size;
        _eventIdx = eventIdx;
        _indirect = indirect;
    }

    public ushort Size => _size;
    public ushort LastAvailIndex => _lastAvail;
    public ushort UsedIndex => _usedIdx;
    public GuestMemory Memory => _memory;

    /// <summary>Byte sizes of the three ring parts for <paramref name="size"/> entries (with the event fields).</summary>
    public static ulong DescTableBytes(int size) => (ulong)size * DescriptorSize;
    public static ulong AvailRingBytes(int size) => 6 + 2UL * (ulong)size;
    public static ulong UsedRingBytes(int size) => 6 + 8UL * (ulong)size;

    /// <summary>
    /// Translates the ring addresses (front-end virtual, each wholly inside one region) and starts at
    /// <paramref name="lastAvail"/>; the used index is read from the ring (the driver's view). When
    /// <paramref name="previous"/> is given (memory table changed under a running queue) its indexes carry over.
    /// </summary>
    public static QueueError TryCreate(GuestMemory memory, in VringAddress address, int size, ushort lastAvail,
        bool eventIdx, bool indirect, SplitRing? previous, out SplitRing? queue)
    {
        queue = null;
        if (size <= 0 || size > VhostUserLimits.MaxQueueSize || (size & (size - 1)) != 0 || !address.IsValid())
        {
            return QueueError.RingAddressInvalid;
        }
        if (!memory.TryTranslateUser(address.Desc, DescTableBytes(size), out nint desc)
            || !memory.TryTranslateUser(address.Avail, AvailRingBytes(size), out nint avail)
            || !memory.TryTranslateUser(address.Used, UsedRingBytes(size), out nint used))
        {
            return QueueError.RingAddressInvalid;
        }
        var q = new SplitRing(memory, desc, avail, used, (ushort)size, eventIdx, indirect);
        if (previous is not null)
        {
            q._lastAvail = previous._lastAvail;
            q._usedIdx = previous._usedIdx;
            q._signalledUsed = previous._signalledUsed;
            q._signalledValid = previous._signalledValid;
        }
        else
        {
            q._lastAvail = lastAvail;
            // SAFETY: used was translated for UsedRingBytes(size) >= 4 bytes; idx is at offset 2, 2-aligned.
            q._usedIdx = LittleEndian(Volatile.Read(ref *(ushort*)(q._used + 2)));
        }
        queue = q;
        return QueueError.None;
    }

    private static ushort LittleEndian(ushort v) => BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);

    /// <summary>The driver's avail idx, read with acquire semantics so ring entries read after it are current.</summary>
    private ushort ReadAvailIdx()
    {
        // SAFETY: avail was translated for AvailRingBytes(size) bytes; idx is at offset 2.
        return LittleEndian(Volatile.Read(ref *(ushort*)(_avail + 2)));
    }

    /// <summary>
    /// Takes the next available chain into <paramref name="request"/>. Returns None with popped=false when the
    /// ring is empty. On error the queue must be considered broken; nothing was consumed.
    /// </summary>
    public QueueError TryPop(DescriptorChain request, out bool popped)
    {
        popped = false;
        ushort availIdx = ReadAvailIdx();
        ushort pending = (ushort)(availIdx - _lastAvail);
        if (pending == 0)
        {
            return QueueError.None;
        }
        if (pending > _size)
        {
            // A driver can only publish as many heads as the ring holds; more means a corrupt or hostile index,
            // which would otherwise make us reprocess stale entries forever (vm-virtio AvailIter, same check).
            return QueueError.AvailIndexTooFarAhead;
        }
        // SAFETY: slot index < size, inside the translated avail ring (4 + 2*size bytes).
        ushort head = LittleEndian(Volatile.Read(ref *(ushort*)(_avail + 4 + 2 * (_lastAvail % _size))));
        if (head >= _size)
        {
            return QueueError.HeadOutOfRange;
        }
        QueueError e = ReadChain(head, request);
        if (e != QueueError.None)
        {
            return e;
        }
        request.Head = head;
        _lastAvail++;
        popped = true;
        return QueueError.None;
    }

    private readonly struct Descriptor
    {
        public readonly ulong Addr;
        public readonly uint Len;
        public readonly ushort Flags;
        public readonly ushort Next;

        public Descriptor(ReadOnlySpan<byte> b)
        {
            Addr = BinaryPrimitives.ReadUInt64LittleEndian(b);
            Len = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
            Flags = BinaryPrimitives.ReadUInt16LittleEndian(b[12..]);
            Next = BinaryPrimitives.ReadUInt16LittleEndian(b[14..]);
        }
    }

    /// <summary>virtio 1.2, 2.7.5 (chains), 2.7.5.3 (indirect). ttl bounds the walk so a loop ends.</summary>
    private QueueError ReadChain(ushort head, DescriptorChain request)
    {
        byte* table = _desc;
        int tableSize = _size;
        int ttl = _size;
        int index = head;
        bool inIndirect = false;
        bool seenWritable = false;
        ulong total = 0;
        ulong readable = 0;
        ulong writable = 0;
        int segments = 0;
        Span<byte> copy = stackalloc byte[DescriptorSize];
        while (true)
        {
            if (ttl-- == 0)
            {
                return QueueError.ChainTooLong;
            }
            // Copy the descriptor once; only the copy is validated and used (the driver may change the original).
            // SAFETY: index < tableSize, and the table was translated (main ring) or checked (indirect) for
            // tableSize * 16 bytes.
            new ReadOnlySpan<byte>(table + index * DescriptorSize, DescriptorSize).CopyTo(copy);
            var d = new Descriptor(copy);
            if ((d.Flags & DescFlagIndirect) != 0)
            {
                if (!_indirect)
                {
                    return QueueError.IndirectNotNegotiated;
                }
                if (inIndirect)
                {
                    return QueueError.IndirectNested; // 2.7.5.3.1: no indirect inside an indirect table
                }
                if ((d.Flags & DescFlagNext) != 0)
                {
                    return QueueError.IndirectWithNext; // 2.7.5.3.1: INDIRECT and NEXT are exclusive
                }
                if (d.Len == 0 || d.Len % DescriptorSize != 0 || d.Len / DescriptorSize > MaxIndirectDescriptors)
                {
                    return QueueError.IndirectBadLength;
                }
                if (!_memory.TryTranslateGuest(new GuestAddress(d.Addr), d.Len, out nint host, out ulong avail) || avail != d.Len)
                {
                    return QueueError.IndirectAddressInvalid;
                }
                table = (byte*)host;
                tableSize = (int)(d.Len / DescriptorSize);
                ttl = tableSize;
                index = 0;
                inIndirect = true;
                continue;
            }

            bool write = (d.Flags & DescFlagWrite) != 0;
            if (!write && seenWritable)
            {
                return QueueError.ReadableAfterWritable; // 2.7.4.2: device-writable descriptors come last
            }
            seenWritable |= write;
            total += d.Len; // at most 1024*1024 descriptors of < 2^32 each: cannot overflow 64 bits
            if (total > MaxChainBytes)
            {
                return QueueError.ChainTooLarge;
            }
            if (write)
            {
                writable += d.Len;
            }
            else
            {
                readable += d.Len;
            }
            if (readable > int.MaxValue || writable > int.MaxValue)
            {
                return QueueError.ChainTooLarge;
            }

            // Translate, splitting at region edges (a buffer may span adjacent regions).
            var address = new GuestAddress(d.Addr);
            ulong remaining = d.Len;
            while (remaining > 0)
            {
                if (!_memory.TryTranslateGuest(address, remaining, out nint host, out ulong piece))
                {
                    return QueueError.DescriptorAddressInvalid;
                }
                if (++segments > MaxSegments)
                {
                    return QueueError.TooManySegments;
                }
                request.AddSegment(host, (int)piece, write);
                remaining -= piece;
                if (remaining > 0 && !address.CheckedAdd(piece, out address))
                {
                    return QueueError.DescriptorAddressInvalid;
                }
            }

            if ((d.Flags & DescFlagNext) == 0)
            {
                return QueueError.None;
            }
            if (d.Next >= tableSize)
            {
                return QueueError.NextOutOfRange;
            }
            index = d.Next;
        }
    }

    /// <summary>Publishes one used element; the idx store has release semantics so the element is seen first.</summary>
    public void AddUsed(ushort head, uint length)
    {
        int slot = _usedIdx % _size;
        byte* elem = _used + 4 + 8 * slot;
        // SAFETY: slot < size, the element (8 bytes) lies inside the translated used ring.
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(elem, 4), head);
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(elem + 4, 4), length);
        _usedIdx++;
        // SAFETY: idx at offset 2 of the used ring.
        Volatile.Write(ref *(ushort*)(_used + 2), LittleEndian(_usedIdx));
    }

    /// <summary>
    /// Whether the driver wants an interrupt for what was published since the last one: used_event with
    /// EVENT_IDX (2.7.10), otherwise VRING_AVAIL_F_NO_INTERRUPT (2.7.7).
    /// </summary>
    public bool ShouldNotify()
    {
        // The used idx store must be visible before we read the driver's suppression fields (virtio 1.2, 2.7.10:
        // otherwise both sides can miss each other's update).
        Interlocked.MemoryBarrier();
        if (_eventIdx)
        {
            // SAFETY: used_event sits right after the avail ring entries, inside AvailRingBytes(size).
            ushort usedEvent = LittleEndian(Volatile.Read(ref *(ushort*)(_avail + 4 + 2 * _size)));
            ushort old = _signalledUsed;
            bool valid = _signalledValid;
            _signalledUsed = _usedIdx;
            _signalledValid = true;
            return !valid || NeedEvent(usedEvent, _usedIdx, old);
        }
        // SAFETY: flags at offset 0 of the avail ring.
        ushort flags = LittleEndian(Volatile.Read(ref *(ushort*)_avail));
        return (flags & AvailFlagNoInterrupt) == 0;
    }

    /// <summary>vring_need_event: notify if event_idx lies in (old, new] (mod 2^16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool NeedEvent(ushort eventIdx, ushort newIdx, ushort oldIdx) =>
        (ushort)(newIdx - eventIdx - 1) < (ushort)(newIdx - oldIdx);

    /// <summary>
    /// With EVENT_IDX, asks the driver to kick for the next buffer (avail_event = last_avail) and re-checks the
    /// ring after a full barrier; returns true if more became available meanwhile (so no kick will come for it).
    /// Without EVENT_IDX just reports whether the ring is non-empty.
    /// </summary>
    public bool EnableNotification()
    {
        if (_eventIdx)
        {
            // SAFETY: avail_event sits right after the used ring entries, inside UsedRingBytes(size).
            Volatile.Write(ref *(ushort*)(_used + 4 + 8 * _size), LittleEndian(_lastAvail));
            Interlocked.MemoryBarrier();
        }
        return ReadAvailIdx() != _lastAvail;
    }
}

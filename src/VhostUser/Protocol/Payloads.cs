using System.Buffers.Binary;

namespace VirtFs.VhostUser;

/// <summary>Limits, each with its reason.</summary>
internal static class VhostUserLimits
{
    /// <summary>Largest legitimate payload is a config message (12 + 256); 4 KiB leaves room for requests we ignore.</summary>
    public const int MaxPayload = 4096;
    /// <summary>VHOST_MEMORY_BASELINE_NREGIONS: SET_MEM_TABLE carries at most 8 regions (and so at most 8 fds).</summary>
    public const int MaxMemTableRegions = 8;
    /// <summary>Most fds any message may carry (SET_MEM_TABLE); more is MSG_CTRUNC and ends the connection.</summary>
    public const int MaxFds = 8;
    /// <summary>Answer to GET_MAX_MEM_SLOTS; QEMU caps its own count at 512, a 1 GiB guest uses 2.</summary>
    public const int MaxMemSlots = 32;
    /// <summary>VIRTQUEUE_MAX_SIZE in QEMU; split rings are powers of two (virtio 1.2, 2.7).</summary>
    public const int MaxQueueSize = 1024;
    /// <summary>VHOST_USER_MAX_CONFIG_SIZE.</summary>
    public const int MaxConfigSize = 256;
    /// <summary>Most virtqueues we serve.</summary>
    public const int MaxQueues = 64;
}

/// <summary>VhostUserMemoryRegion: u64 guest_addr, u64 size, u64 user_addr, u64 mmap_offset.</summary>
internal readonly record struct MemoryRegionDescription(ulong GuestPhysAddr, ulong MemorySize, ulong UserAddr, ulong MmapOffset)
{
    public const int Length = 32;

    public static MemoryRegionDescription Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(b),
        BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[16..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[24..]));

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(b, GuestPhysAddr);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], MemorySize);
        BinaryPrimitives.WriteUInt64LittleEndian(b[16..], UserAddr);
        BinaryPrimitives.WriteUInt64LittleEndian(b[24..], MmapOffset);
    }

    /// <summary>Non-empty, and no end (guest, user, file) overflows 64 bits.</summary>
    public bool IsValid() =>
        MemorySize != 0
        && CheckedEnd(GuestPhysAddr) && CheckedEnd(UserAddr) && CheckedEnd(MmapOffset);

    private bool CheckedEnd(ulong start) => ulong.MaxValue - start >= MemorySize;

    public override string ToString() =>
        $"[gpa 0x{GuestPhysAddr:x} size 0x{MemorySize:x} uaddr 0x{UserAddr:x} offset 0x{MmapOffset:x}]";
}

/// <summary>VhostUserVringState: u32 index, u32 num.</summary>
internal readonly record struct VringState(uint Index, uint Num)
{
    public const int Length = 8;

    public static VringState Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(b), BinaryPrimitives.ReadUInt32LittleEndian(b[4..]));

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, Index);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Num);
    }

    /// <summary>SET_VRING_NUM: a power of two in 1..MaxQueueSize (virtio 1.2, 2.7: split rings).</summary>
    public bool IsValidSize() => Num != 0 && Num <= VhostUserLimits.MaxQueueSize && (Num & (Num - 1)) == 0;

    /// <summary>SET_VRING_BASE: a 16-bit ring index.</summary>
    public bool IsValidBase() => Num <= ushort.MaxValue;

    /// <summary>SET_VRING_ENABLE: 0 or 1.</summary>
    public bool IsValidEnable() => Num <= 1;
}

/// <summary>VhostUserVringAddr: u32 index, u32 flags, u64 desc, u64 used, u64 avail, u64 log (front-end virtual).</summary>
internal readonly record struct VringAddress(uint Index, uint Flags, ulong Desc, ulong Used, ulong Avail, ulong Log)
{
    public const int Length = 40;
    /// <summary>VHOST_VRING_F_LOG: dirty logging of the used ring; we offer no logging, so it must be clear.</summary>
    public const uint LogFlag = 1;

    public static VringAddress Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(b),
        BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[16..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[24..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[32..]));

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, Index);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], Desc);
        BinaryPrimitives.WriteUInt64LittleEndian(b[16..], Used);
        BinaryPrimitives.WriteUInt64LittleEndian(b[24..], Avail);
        BinaryPrimitives.WriteUInt64LittleEndian(b[32..], Log);
    }

    /// <summary>Alignment per virtio 1.2, 2.7 (desc 16, avail 2, used 4); no flag bits (we do not log).</summary>
    public bool IsValid() => Flags == 0 && Desc % 16 == 0 && Avail % 2 == 0 && Used % 4 == 0;
}

/// <summary>VhostUserConfig header: u32 offset, u32 size, u32 flags, then size bytes.</summary>
internal readonly record struct ConfigHeader(uint Offset, uint Size, uint Flags)
{
    public const int Length = 12;
    /// <summary>VHOST_SET_CONFIG_TYPE_FRONTEND (0) and _MIGRATION (1) are the only flag values.</summary>
    public const uint MaxFlags = 1;

    public static ConfigHeader Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(b),
        BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[8..]));

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, Offset);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Size);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], Flags);
    }

    public bool IsValid(int payloadLength) =>
        Size <= VhostUserLimits.MaxConfigSize
        && Offset <= VhostUserLimits.MaxConfigSize
        && Offset + Size <= VhostUserLimits.MaxConfigSize
        && Flags <= MaxFlags
        && payloadLength == Length + (int)Size;
}

/// <summary>The u64 of SET_VRING_KICK/CALL/ERR: bits 0-7 index, bit 8 "no fd" (vhost-user.rst).</summary>
internal readonly record struct VringFdPayload(ulong Value)
{
    public const ulong NoFdFlag = 0x100;
    public uint Index => (uint)(Value & 0xff);
    public bool NoFd => (Value & NoFdFlag) != 0;
    public bool IsValid() => (Value & ~(0xffUL | NoFdFlag)) == 0;
}

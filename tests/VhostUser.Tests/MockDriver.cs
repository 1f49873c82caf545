using System.Buffers.Binary;

namespace VirtFs.VhostUser.Tests;

/// <summary>
/// Plays the guest driver: lays out a split virtqueue (desc table, avail ring, used ring) in guest RAM and
/// publishes chains the way Linux's virtio_ring does.
/// </summary>
internal sealed unsafe class MockDriver
{
    private readonly GuestRam _ram;
    private ushort _availIdx;
    private int _nextFree;

    public MockDriver(GuestRam ram, ushort size, ulong descGpa, ulong availGpa, ulong usedGpa)
    {
        _ram = ram;
        Size = size;
        DescGpa = descGpa;
        AvailGpa = availGpa;
        UsedGpa = usedGpa;
    }

    /// <summary>Standard layout at the start of RAM: desc at +0, avail after it, used 4 KiB-aligned.</summary>
    public static MockDriver Create(GuestRam ram, ushort size)
    {
        ulong desc = ram.GuestPhysAddr;
        ulong avail = desc + 16UL * size;
        ulong used = (avail + 6 + 2UL * size + 4095) & ~4095UL;
        return new MockDriver(ram, size, desc, avail, used);
    }

    public ushort Size { get; }
    public ulong DescGpa { get; }
    public ulong AvailGpa { get; }
    public ulong UsedGpa { get; }

    /// <summary>First byte after the rings, for data buffers.</summary>
    public ulong DataGpa => (UsedGpa + 6 + 8UL * Size + 4095) & ~4095UL;

    public VringAddress Address(uint index = 0) =>
        new(index, 0, _ram.UserOf(DescGpa), _ram.UserOf(UsedGpa), _ram.UserOf(AvailGpa), 0);

    public void WriteDescriptor(ulong tableGpa, int index, ulong addr, uint len, ushort flags, ushort next)
    {
        Span<byte> d = _ram.Span(tableGpa + 16UL * (ulong)index, 16);
        BinaryPrimitives.WriteUInt64LittleEndian(d, addr);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], len);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
    }

    /// <summary>Writes a chain into free descriptors of the main table and returns its head.</summary>
    public ushort AddChain(params (ulong Addr, uint Len, bool Write)[] buffers)
    {
        int head = _nextFree;
        for (int i = 0; i < buffers.Length; i++)
        {
            int index = _nextFree++ % Size;
            bool last = i == buffers.Length - 1;
            ushort flags = (ushort)((buffers[i].Write ? SplitRing.DescFlagWrite : 0) | (last ? 0 : SplitRing.DescFlagNext));
            WriteDescriptor(DescGpa, index, buffers[i].Addr, buffers[i].Len, flags, (ushort)(last ? 0 : (_nextFree % Size)));
        }
        return (ushort)(head % Size);
    }

    /// <summary>Writes an indirect table at <paramref name="tableGpa"/> and one main descriptor pointing at it.</summary>
    public ushort AddIndirect(ulong tableGpa, params (ulong Addr, uint Len, bool Write)[] buffers)
    {
        for (int i = 0; i < buffers.Length; i++)
        {
            bool last = i == buffers.Length - 1;
            ushort flags = (ushort)((buffers[i].Write ? SplitRing.DescFlagWrite : 0) | (last ? 0 : SplitRing.DescFlagNext));
            WriteDescriptor(tableGpa, i, buffers[i].Addr, buffers[i].Len, flags, (ushort)(last ? 0 : i + 1));
        }
        int head = _nextFree++ % Size;
        WriteDescriptor(DescGpa, head, tableGpa, (uint)(16 * buffers.Length), SplitRing.DescFlagIndirect, 0);
        return (ushort)head;
    }

    public void Publish(ushort head)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_ram.Span(AvailGpa + 4 + 2UL * (ulong)(_availIdx % Size), 2), head);
        _availIdx++;
        SetAvailIdx(_availIdx);
    }

    /// <summary>Publishes several chains with one store of the avail index: the device sees all or none of them.</summary>
    public void PublishTogether(params ushort[] heads)
    {
        foreach (ushort head in heads)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(_ram.Span(AvailGpa + 4 + 2UL * (ulong)(_availIdx++ % Size), 2), head);
        }
        SetAvailIdx(_availIdx);
    }

    public void SetAvailIdx(ushort value)
    {
        _availIdx = value;
        Volatile.Write(ref *(ushort*)_ram.At(AvailGpa + 2), value);
    }

    public void SetAvailFlags(ushort flags) => BinaryPrimitives.WriteUInt16LittleEndian(_ram.Span(AvailGpa, 2), flags);

    public void SetUsedEvent(ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(_ram.Span(AvailGpa + 4 + 2UL * Size, 2), value);

    public ushort UsedIdx => Volatile.Read(ref *(ushort*)_ram.At(UsedGpa + 2));

    public ushort AvailEvent => BinaryPrimitives.ReadUInt16LittleEndian(_ram.Span(UsedGpa + 4 + 8UL * Size, 2));

    public (uint Id, uint Len) Used(int i)
    {
        Span<byte> e = _ram.Span(UsedGpa + 4 + 8UL * (ulong)(i % Size), 8);
        return (BinaryPrimitives.ReadUInt32LittleEndian(e), BinaryPrimitives.ReadUInt32LittleEndian(e[4..]));
    }
}

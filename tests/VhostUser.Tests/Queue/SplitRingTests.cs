using System.Text;

namespace VirtFs.VhostUser.Tests.Queue;

public sealed class SplitRingTests : IDisposable
{
    private const ulong Base = 0x10_0000;
    private const ulong UserBase = 0x7f00_0000_0000;
    private readonly GuestRam _ram = new(1 << 20, Base, UserBase);
    private readonly GuestMemory _memory;
    private readonly MockDriver _driver;

    public SplitRingTests()
    {
        _memory = _ram.MapForBackend();
        _driver = MockDriver.Create(_ram, 16);
    }

    public void Dispose()
    {
        _memory.Release();
        _ram.Dispose();
    }

    private SplitRing NewQueue(bool eventIdx = false, bool indirect = true, GuestMemory? memory = null, MockDriver? driver = null)
    {
        driver ??= _driver;
        QueueError e = SplitRing.TryCreate(memory ?? _memory, driver.Address(), driver.Size, 0, eventIdx, indirect, null, out SplitRing? q);
        Assert.Equal(QueueError.None, e);
        return q!;
    }

    private static DescriptorChain Pop(SplitRing q, QueueError expected = QueueError.None)
    {
        var r = new DescriptorChain();
        QueueError e = q.TryPop(r, out bool popped);
        Assert.Equal(expected, e);
        if (expected == QueueError.None)
        {
            Assert.True(popped);
            r.MarkOwnedByDevice();
        }
        return r;
    }

    [Fact]
    public void EmptyRingPopsNothing()
    {
        SplitRing q = NewQueue();
        Assert.Equal(QueueError.None, q.TryPop(new DescriptorChain(), out bool popped));
        Assert.False(popped);
    }

    [Fact]
    public void ChainGathersAndScattersAcrossDescriptors()
    {
        ulong data = _driver.DataGpa;
        Encoding.ASCII.GetBytes("hello ").CopyTo(_ram.Span(data, 6));
        Encoding.ASCII.GetBytes("world").CopyTo(_ram.Span(data + 100, 5));
        ushort head = _driver.AddChain((data, 6, false), (data + 100, 5, false), (data + 200, 3, true), (data + 300, 10, true));
        _driver.Publish(head);

        SplitRing q = NewQueue();
        DescriptorChain r = Pop(q);
        Assert.Equal(head, r.Head);
        Assert.Equal(11, r.ReadableLength);
        Assert.Equal(13, r.WritableLength);
        var buffer = new byte[32];
        Assert.Equal(11, r.CopyFromReadable(0, buffer));
        Assert.Equal("hello world", Encoding.ASCII.GetString(buffer, 0, 11));
        Assert.Equal(4, r.CopyFromReadable(7, buffer.AsSpan(0, 4)));
        Assert.Equal("orld", Encoding.ASCII.GetString(buffer, 0, 4));
        Assert.Equal(0, r.CopyFromReadable(11, buffer));

        Assert.Equal(13, r.CopyToWritable(0, Encoding.ASCII.GetBytes("ABCDEFGHIJKLMNOP")));
        Assert.Equal("ABC", Encoding.ASCII.GetString(_ram.Span(data + 200, 3)));
        Assert.Equal("DEFGHIJKLM", Encoding.ASCII.GetString(_ram.Span(data + 300, 10)));

        Span<Tmds.Linux.iovec> iov = stackalloc Tmds.Linux.iovec[4];
        Assert.Throws<InvalidOperationException>(() => r.GetWritableIovecs(0, 1, new Tmds.Linux.iovec[1]));
        Assert.True(r.TryBeginDirectAccess());
        Assert.Equal(2, r.GetWritableIovecs(2, 5, iov));
        Assert.Equal(1, (int)(ulong)iov[0].iov_len);
        Assert.Equal(4, (int)(ulong)iov[1].iov_len);
        Assert.Equal(-1, r.GetWritableIovecs(0, 13, iov[..1]));
        Assert.Equal(2, r.GetReadableIovecs(0, 100, iov)); // clamped at the end
        r.EndDirectAccess();
    }

    [Fact]
    public void UsedRingGetsElementAndIndex()
    {
        ushort head = _driver.AddChain((_driver.DataGpa, 8, true));
        _driver.Publish(head);
        SplitRing q = NewQueue();
        DescriptorChain r = Pop(q);
        q.AddUsed(r.Head, 5);
        Assert.Equal(1, _driver.UsedIdx);
        Assert.Equal((head, 5u), _driver.Used(0));
    }

    [Fact]
    public void IndirectTableIsFollowed()
    {
        ulong data = _driver.DataGpa;
        ulong table = data + 0x1000;
        ushort head = _driver.AddIndirect(table, (data, 4, false), (data + 64, 8, true), (data + 128, 8, true));
        _driver.Publish(head);
        DescriptorChain r = Pop(NewQueue());
        Assert.Equal(4, r.ReadableLength);
        Assert.Equal(16, r.WritableLength);
    }

    [Fact]
    public void IndirectRefusedWhenNotNegotiated()
    {
        ulong data = _driver.DataGpa;
        _driver.Publish(_driver.AddIndirect(data + 0x1000, (data, 4, false)));
        Pop(NewQueue(indirect: false), QueueError.IndirectNotNegotiated);
    }

    [Fact]
    public void NestedIndirectIsRefused()
    {
        ulong data = _driver.DataGpa;
        ulong table = data + 0x1000;
        _driver.WriteDescriptor(table, 0, data + 0x2000, 16, SplitRing.DescFlagIndirect, 0);
        _driver.WriteDescriptor(_driver.DescGpa, 0, table, 16, SplitRing.DescFlagIndirect, 0);
        _driver.Publish(0);
        Pop(NewQueue(), QueueError.IndirectNested);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(15u)]
    [InlineData(17u)]
    [InlineData(16u * 1025)]
    public void IndirectWithBadLengthIsRefused(uint length)
    {
        _driver.WriteDescriptor(_driver.DescGpa, 0, _driver.DataGpa, length, SplitRing.DescFlagIndirect, 0);
        _driver.Publish(0);
        Pop(NewQueue(), QueueError.IndirectBadLength);
    }

    [Fact]
    public void IndirectWithNextIsRefused()
    {
        _driver.WriteDescriptor(_driver.DescGpa, 0, _driver.DataGpa, 16, SplitRing.DescFlagIndirect | SplitRing.DescFlagNext, 1);
        _driver.Publish(0);
        Pop(NewQueue(), QueueError.IndirectWithNext);
    }

    [Fact]
    public void IndirectTableOutsideMemoryIsRefused()
    {
        _driver.WriteDescriptor(_driver.DescGpa, 0, Base + (1 << 20) - 16, 32, SplitRing.DescFlagIndirect, 0);
        _driver.Publish(0);
        Pop(NewQueue(), QueueError.IndirectAddressInvalid);
    }

    [Fact]
    public void LoopEndsWithChainTooLong()
    {
        _driver.WriteDescriptor(_driver.DescGpa, 0, _driver.DataGpa, 4, SplitRing.DescFlagNext, 1);
        _driver.WriteDescriptor(_driver.DescGpa, 1, _driver.DataGpa, 4, SplitRing.DescFlagNext, 0);
        _driver.Publish(0);
        Pop(NewQueue(), QueueError.ChainTooLong);
    }

    [Fact]
    public void SelfLoopInIndirectTableEnds()
    {
        ulong table = _driver.DataGpa + 0x1000;
        _driver.WriteDescriptor(table, 0, _driver.DataGpa, 4, SplitRing.DescFlagNext, 1);
        _driver.WriteDescriptor(table, 1, _driver.DataGpa, 4, SplitRing.DescFlagNext, 1);
        _driver.WriteDescriptor(_driver.DescGpa, 0, table, 32, SplitRing.DescFlagIndirect, 0);
        _driver.Publish(0);
        Pop(NewQueue(), QueueError.ChainTooLong);
    }

    [Fact]
    public void NextOutOfRangeIsRefused()
    {
        _driver.WriteDescriptor(_driver.DescGpa, 0, _driver.DataGpa, 4, SplitRing.DescFlagNext, 16);
        _driver.Publish(0);
        Pop(NewQueue(), QueueError.NextOutOfRange);
    }

    [Fact]
    public void HeadOutOfRangeIsRefused()
    {
        _driver.Publish(16);
        Pop(NewQueue(), QueueError.HeadOutOfRange);
    }

    [Fact]
    public void AvailIndexTooFarAheadIsRefused()
    {
        _driver.SetAvailIdx(17);
        Pop(NewQueue(), QueueError.AvailIndexTooFarAhead);
    }

    [Theory]
    [InlineData(0x0UL, 16u)]                      // below the region
    [InlineData(Base + (1 << 20) - 8, 16u)]       // crosses the region's end
    [InlineData(ulong.MaxValue - 3, 16u)]         // wraps around 2^64
    public void OutOfBoundsBufferIsRefused(ulong addr, uint len)
    {
        _driver.Publish(_driver.AddChain((addr, len, false)));
        Pop(NewQueue(), QueueError.DescriptorAddressInvalid);
    }

    [Fact]
    public void ReadableAfterWritableIsRefused()
    {
        ulong d = _driver.DataGpa;
        _driver.Publish(_driver.AddChain((d, 4, true), (d + 8, 4, false)));
        Pop(NewQueue(), QueueError.ReadableAfterWritable);
    }

    [Fact]
    public void HugeTotalLengthIsRefused()
    {
        // Lengths are checked before translation: a chain claiming > 2^31 bytes per direction never maps.
        ulong d = _driver.DataGpa;
        _driver.Publish(_driver.AddChain((d, 0x8000_0000u, false)));
        Pop(NewQueue(), QueueError.ChainTooLarge);
    }

    [Fact]
    public void RingOutsideMemoryIsRefused()
    {
        var bad = new VringAddress(0, 0, UserBase + (1 << 20) - 16, _driver.Address().Used, _driver.Address().Avail, 0);
        Assert.Equal(QueueError.RingAddressInvalid, SplitRing.TryCreate(_memory, bad, 16, 0, false, false, null, out _));
        var misaligned = _driver.Address() with { Desc = _driver.Address().Desc + 8 };
        Assert.Equal(QueueError.RingAddressInvalid, SplitRing.TryCreate(_memory, misaligned, 16, 0, false, false, null, out _));
    }

    [Fact]
    public void BufferSpanningAdjacentRegionsIsSplit()
    {
        using var second = new GuestRam(1 << 16, Base + (1 << 20), UserBase + (1 << 20));
        GuestMemory memory = GuestRam.MapAll(_ram, second);
        try
        {
            ulong start = Base + (1 << 20) - 4;
            Encoding.ASCII.GetBytes("abcd").CopyTo(_ram.Span(start, 4));
            Encoding.ASCII.GetBytes("efgh").CopyTo(second.Span(Base + (1 << 20), 4));
            _driver.Publish(_driver.AddChain((start, 8, false)));
            DescriptorChain r = Pop(NewQueue(memory: memory));
            Assert.Equal(2, r.ReadableSegmentCount);
            var b = new byte[8];
            Assert.Equal(8, r.CopyFromReadable(0, b));
            Assert.Equal("abcdefgh", Encoding.ASCII.GetString(b));
        }
        finally
        {
            memory.Release();
        }
    }

    [Theory]
    [InlineData(0, 1, 0, true)]    // event 0, moved 0 -> 1: crossed
    [InlineData(5, 6, 5, true)]
    [InlineData(5, 5, 4, false)]   // event 5 not yet reached (new == event)
    [InlineData(3, 10, 5, false)]  // event already passed before old
    [InlineData(7, 10, 5, true)]
    [InlineData(65535, 2, 65534, true)] // wrap-around
    [InlineData(1, 1, 1, false)]   // nothing new
    public void NeedEventMath(int eventIdx, int newIdx, int oldIdx, bool expected) =>
        Assert.Equal(expected, SplitRing.NeedEvent((ushort)eventIdx, (ushort)newIdx, (ushort)oldIdx));

    [Fact]
    public void EventIdxSuppressesUntilUsedEvent()
    {
        SplitRing q = NewQueue(eventIdx: true);
        for (int i = 0; i < 4; i++)
        {
            _driver.Publish(_driver.AddChain((_driver.DataGpa, 4, true)));
        }
        var heads = Enumerable.Range(0, 4).Select(_ => Pop(q).Head).ToArray();
        _driver.SetUsedEvent(2); // driver wants an interrupt once used idx passes 2
        q.AddUsed(heads[0], 0);
        Assert.True(q.ShouldNotify()); // first notification is always sent
        q.AddUsed(heads[1], 0);
        Assert.False(q.ShouldNotify()); // idx 2: event 2 not crossed yet
        q.AddUsed(heads[2], 0);
        Assert.True(q.ShouldNotify()); // idx 3 crossed 2
        q.AddUsed(heads[3], 0);
        Assert.False(q.ShouldNotify());
    }

    [Fact]
    public void NoInterruptFlagHonouredWithoutEventIdx()
    {
        SplitRing q = NewQueue(eventIdx: false);
        _driver.Publish(_driver.AddChain((_driver.DataGpa, 4, true)));
        DescriptorChain r = Pop(q);
        q.AddUsed(r.Head, 0);
        _driver.SetAvailFlags(SplitRing.AvailFlagNoInterrupt);
        Assert.False(q.ShouldNotify());
        _driver.SetAvailFlags(0);
        Assert.True(q.ShouldNotify());
    }

    [Fact]
    public void EnableNotificationWritesAvailEventAndRechecks()
    {
        SplitRing q = NewQueue(eventIdx: true);
        _driver.Publish(_driver.AddChain((_driver.DataGpa, 4, true)));
        Pop(q);
        Assert.False(q.EnableNotification());
        Assert.Equal(1, _driver.AvailEvent);
        _driver.Publish(_driver.AddChain((_driver.DataGpa, 4, true)));
        Assert.True(q.EnableNotification());
    }
}

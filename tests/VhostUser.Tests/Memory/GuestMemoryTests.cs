namespace VirtFs.VhostUser.Tests.Memory;

public sealed class GuestMemoryTests
{
    [Fact]
    public void TranslatesAndClipsAtRegionEdge()
    {
        using var ram = new GuestRam(1 << 16, 0x1000_0000, 0x5555_0000_0000);
        GuestMemory m = ram.MapForBackend();
        try
        {
            Assert.True(m.TryTranslateGuest(new GuestAddress(0x1000_0000 + 0xFFF0), 0x100, out _, out ulong available));
            Assert.Equal(0x10UL, available);
            Assert.False(m.TryTranslateGuest(new GuestAddress(0x1000_0000 + 0x10000), 1, out _, out _));
            Assert.False(m.TryTranslateGuest(new GuestAddress(0x0FFF_FFFF), 1, out _, out _));
            Assert.True(m.TryTranslateUser(0x5555_0000_0000, 0x10000, out _));
            Assert.False(m.TryTranslateUser(0x5555_0000_0001, 0x10000, out _));
            Assert.False(m.TryTranslateUser(ulong.MaxValue, 2, out _));
        }
        finally
        {
            m.Release();
        }
    }

    [Fact]
    public void MappingPastEndOfFileIsRefused()
    {
        using var ram = new GuestRam(1 << 16, 0, 0x1000, fileSize: 4096);
        var e = Assert.Throws<VhostUserProtocolException>(() => MappedRegion.Map(ram.BorrowFd(), ram.Description));
        Assert.Equal(VhostUserError.InvalidMemoryRegion, e.Error);
    }

    [Theory]
    [InlineData(0UL, 0UL, 0UL, 0UL)]                  // empty
    [InlineData(ulong.MaxValue, 2UL, 0UL, 0UL)]       // guest end overflows
    [InlineData(0UL, 2UL, ulong.MaxValue, 0UL)]       // user end overflows
    [InlineData(0UL, 2UL, 0UL, ulong.MaxValue)]       // file end overflows
    public void InvalidRegionDescriptions(ulong gpa, ulong size, ulong uaddr, ulong offset) =>
        Assert.False(new MemoryRegionDescription(gpa, size, uaddr, offset).IsValid());

    [Fact]
    public void SnapshotOutlivesTableChange()
    {
        using var ram = new GuestRam(1 << 16, 0, 0x1000);
        using var table = new MemoryTable();
        table.Add(MappedRegion.Map(ram.BorrowFd(), ram.Description));
        GuestMemory held = table.Acquire();
        Assert.True(table.Remove(ram.Description));
        Assert.Equal(0, table.RegionCount);
        // Still mapped for the holder: reading through it must work.
        Assert.True(held.TryTranslateGuest(new GuestAddress(0), 8, out nint host, out _));
        unsafe
        {
            *(long*)host = 42;
            Assert.Equal(42, *(long*)ram.Pointer);
        }
        held.Release();
        Assert.False(held.TryAcquire());
    }

    [Fact]
    public void GuestAddressCheckedAdd()
    {
        Assert.True(new GuestAddress(1).CheckedAdd(2, out GuestAddress r));
        Assert.Equal(new GuestAddress(3), r);
        Assert.False(new GuestAddress(ulong.MaxValue).CheckedAdd(1, out _));
    }
}

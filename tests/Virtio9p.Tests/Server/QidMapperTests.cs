using VirtFs.Virtio9p.Server;

namespace VirtFs.Virtio9p.Tests.Server;

public class QidMapperTests
{
    [Fact]
    public void First_device_keeps_inode_numbers()
    {
        var mapper = new QidMapper();
        Assert.Equal(1234UL, mapper.Map(0x801, 1234));
    }

    [Fact]
    public void Same_inode_on_two_devices_maps_to_two_paths()
    {
        var mapper = new QidMapper();
        ulong a = mapper.Map(1, 42);
        ulong b = mapper.Map(2, 42);
        Assert.NotEqual(a, b);
        Assert.Equal(a, mapper.Map(1, 42));
        Assert.Equal(b, mapper.Map(2, 42));
    }

    [Fact]
    public void Huge_inodes_get_distinct_overflow_numbers()
    {
        var mapper = new QidMapper();
        ulong a = mapper.Map(1, ulong.MaxValue);
        ulong b = mapper.Map(1, ulong.MaxValue - 1);
        Assert.NotEqual(a, b);
        Assert.Equal(a, mapper.Map(1, ulong.MaxValue));
        Assert.NotEqual(a, mapper.Map(1, 5));
    }
}

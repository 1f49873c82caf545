using VirtFs.Virtio9p.FileSystem;
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

    private static FileStat Regular(ulong size, Timestamp modify, Timestamp change) =>
        new(1, 42, FileStat.TypeRegular | 0x1a4, 0, 0, 1, 0, size, 4096, 8, default, modify, change, default, false);

    /// <summary>cache=mmap keeps a file's pages while qid.version stays the same (v9fs_test_inode_dotl): a change
    /// within the same second that keeps the size (a host process rewriting a file in place) must change it too.</summary>
    [Fact]
    public void Version_changes_with_every_timestamp_or_size_change()
    {
        var mapper = new QidMapper();
        var t = new Timestamp(1_700_000_000, 100);
        uint v = mapper.ToQid(Regular(4096, t, t)).Version;
        uint sameSecondWrite = mapper.ToQid(Regular(4096, t with { Nanoseconds = 4_000_100 }, t with { Nanoseconds = 4_000_100 })).Version;
        uint mtimeRestored = mapper.ToQid(Regular(4096, t, t with { Nanoseconds = 8_000_100 })).Version;
        uint truncated = mapper.ToQid(Regular(0, t, t)).Version;
        Assert.NotEqual(v, sameSecondWrite);
        Assert.NotEqual(v, mtimeRestored); // utime() after a write puts mtime back; ctime still moved
        Assert.NotEqual(v, truncated);
        Assert.Equal(v, mapper.ToQid(Regular(4096, t, t)).Version); // stable while nothing changes
    }

    /// <summary>A regular file whose qid.version is 0 is never cached by cache=mmap: keep 0 out.</summary>
    [Fact]
    public void Version_of_a_regular_file_is_never_zero()
    {
        var mapper = new QidMapper();
        Assert.NotEqual(0u, mapper.ToQid(Regular(0, default, default)).Version);
    }
}

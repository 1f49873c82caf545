using Tmds.Linux;
using VirtFs.Virtio9p.FileSystem;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>The queue thread serves Tread itself only while the page cache holds the data: a read that would wait
/// on the disk is given back for a worker, so one cold file cannot stall every request behind it on the ring.</summary>
public sealed class NoWaitReadTests : IDisposable
{
    private const uint Root = 0, File1 = 1;
    private const int Size = 1 << 20;
    private readonly string _dir;
    private readonly string _path;
    private readonly byte[] _data = new byte[Size];
    private readonly LocalFileSystem _fs;
    private readonly P9TestClient _client;

    public NoWaitReadTests()
    {
        _dir = PageCache.ScratchDirectory("p9nowait-");
        _path = Path.Combine(_dir, "cold");
        new Random(7).NextBytes(_data);
        File.WriteAllBytes(_path, _data);
        _fs = new LocalFileSystem(_dir);
        _client = new P9TestClient(_fs);
        _client.Handshake(Root);
        _client.Walk(Root, File1, "cold").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(File1).U32(0)).Expect(T.Rlopen);
    }

    public void Dispose()
    {
        _fs.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void A_read_of_data_out_of_the_page_cache_is_given_back_and_served_by_a_worker()
    {
        PageCache.Evict(_path);
        _client.AsQueueThread = true;
        Assert.True(Read(0, 4096).GivenBack, "the queue thread read a file the page cache had dropped: is /var/tmp a tmpfs?");

        _client.AsQueueThread = false; // the worker: waits for the disk
        Assert.Equal(_data[..4096], Data(Read(0, 4096)));

        _client.AsQueueThread = true; // now cached: served on the queue thread
        Assert.Equal(_data[..4096], Data(Read(0, 4096)));
    }

    [Fact]
    public void A_read_cached_only_in_part_is_given_back_whole_but_a_short_read_at_the_end_of_file_is_served()
    {
        PageCache.Evict(_path);
        // The first page only, without readahead: the rest of the file stays on the disk.
        using (var host = File.OpenHandle(_path))
        {
            int fd = (int)host.DangerousGetHandle();
            Assert.Equal(0, LibC.posix_fadvise(fd, 0, 0, LibC.POSIX_FADV_RANDOM));
            Assert.Equal(4096, RandomAccess.Read(host, new byte[4096], 0));
        }
        // The kernel may have cached more than that page (a larger folio): the read spans up to the first page it
        // did not cache, so it starts in the cache and ends outside it.
        bool[] cached = PageCache.Cached(_path, Size / PageCache.PageSize);
        Assert.True(cached[0], "page 0 was read but is not cached");
        int firstCold = Array.IndexOf(cached, false);
        Assert.True(firstCold > 0, "every page of the file is still cached after the eviction");
        Assert.True(firstCold < 16, $"the first {firstCold} pages were cached: no partly cached read fits 64 KiB");
        uint count = (uint)((firstCold + 1) * PageCache.PageSize);
        _client.AsQueueThread = true;
        Assert.True(Read(0, count).GivenBack, $"a read of {count} bytes with page {firstCold} out of the cache was served");
        _client.AsQueueThread = false;
        Assert.Equal(_data[..(int)count], Data(Read(0, count)));

        // The file's last 100 bytes, cached: a short read that is the end of the file is the answer.
        _client.Call(T.Tread, b => b.U32(File1).U64(Size - 4096).U32(4096)).Expect(T.Rread);
        _client.AsQueueThread = true;
        Assert.Equal(_data[(Size - 100)..], Data(Read(Size - 100, 4096)));
        Assert.Empty(Data(Read(Size, 4096)));
    }

    private P9TestClient.Reply Read(ulong offset, uint count) =>
        _client.Call(T.Tread, b => b.U32(File1).U64(offset).U32(count));

    private static byte[] Data(P9TestClient.Reply reply)
    {
        reply.Expect(T.Rread);
        return reply.Take((int)reply.U32());
    }
}

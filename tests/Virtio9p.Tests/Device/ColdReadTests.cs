using VirtFs.Virtio9p.Tests.Abuse;
using VirtFs.Virtio9p.Tests.Server;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Device;

/// <summary>Through the real ring and device: a Tread whose data is not in the page cache leaves the queue thread
/// for a worker and is answered once, with the file's bytes, and the queue thread serves the next one itself.</summary>
public sealed class ColdReadTests : IDisposable
{
    private readonly NinePOverRing _ring = new(parent: PageCache.Root);

    public void Dispose() => _ring.Dispose();

    [Fact]
    public void A_cold_read_is_served_by_a_worker_and_a_warm_one_by_the_queue_thread()
    {
        byte[] data = new byte[256 * 1024];
        new Random(3).NextBytes(data);
        string path = Path.Combine(_ring.Export, "cold");
        File.WriteAllBytes(path, data);
        PageCache.Evict(path);
        _ring.Handshake();
        _ring.Call(T.Twalk, b => b.U32(0).U32(1).U16(1).Str("cold")).Expect(T.Rwalk);
        _ring.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);

        Assert.Equal(data[4096..8192], Read(4096));
        Assert.Equal(1, _ring.Device.ReadsGivenBack); // "is /var/tmp a tmpfs?" if 0: nothing was evicted
        // Cached now: the queue thread takes it (not routed to the workers up front) and does not give it back.
        Assert.True(_ring.Server.IsNonBlocking(T.Tread, 1u));
        Assert.Equal(data[4096..8192], Read(4096));
        Assert.Equal(1, _ring.Device.ReadsGivenBack);
    }

    private byte[] Read(ulong offset)
    {
        var reply = _ring.Call(T.Tread, b => b.U32(1).U64(offset).U32(4096), replyCapacity: 8192).Expect(T.Rread);
        return reply.Take((int)reply.U32());
    }
}

using VirtFs.Virtio9p.FileSystem;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Rlopen/Rlcreate's iounit: whole 4 KiB pages, as QEMU's get_iounit. With 0 the Linux client cut reads
/// and writes at msize - 24 bytes (511976 at msize 512000), so every piece after the first began mid-page.</summary>
public sealed class IoUnitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("p9iounit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(512000, 507904)] // the Linux virtio maximum: 124 pages
    [InlineData(131072, 126976)] // 31 pages: msize itself is not, once the 24-byte header is taken
    [InlineData(8192, 4096)]
    public void Lopen_and_lcreate_answer_the_whole_pages_one_message_carries(int msize, uint expected)
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "data");
        using var local = new LocalFileSystem(_dir);
        var client = new P9TestClient(local, msize);
        client.Handshake(0);

        client.Walk(0, 1, "f").Expect(T.Rwalk);
        var open = client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
        open.Qid();
        Assert.Equal(expected, open.U32());
        Assert.Equal(0u, expected % 4096);

        client.Walk(0, 2).Expect(T.Rwalk);
        var create = client.Call(T.Tlcreate, b => b.U32(2).Str("g").U32(0x41).U32(0x1A4).U32(0)).Expect(T.Rlcreate);
        create.Qid();
        Assert.Equal(expected, create.U32());
    }
}

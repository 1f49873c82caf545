using Microsoft.Extensions.Logging.Abstractions;
using VirtFs.Virtio9p.Device;
using VirtFs.Virtio9p.FileSystem;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Issue 13, "When QEMU goes away": the vhost-user server disposes the device of a front-end that left.
/// Its 9P session ends then: no fid and no host fd of it survives into the next front-end's, not even one a
/// request was still opening, and a request whose buffers were taken back moves no data.</summary>
public sealed class SessionEndTests : IDisposable
{
    private const uint Root = 0;
    private readonly string _dir;
    private readonly LocalFileSystem _local;
    private readonly GatedFileSystem _fs;
    private readonly P9TestClient _client;

    public SessionEndTests()
    {
        _dir = Directory.CreateTempSubdirectory("p9end-").FullName;
        _local = new LocalFileSystem(_dir);
        _fs = new GatedFileSystem(_local);
        _client = new P9TestClient(_fs);
        _client.Handshake(Root);
    }

    public void Dispose()
    {
        _fs.Release.Set();
        _local.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Fds of this process open on <paramref name="path"/>.</summary>
    private static int OpenFds(string path) => Directory.EnumerateFileSystemEntries("/proc/self/fd").Count(fd =>
    {
        try
        {
            return new FileInfo(fd).LinkTarget == path;
        }
        catch (IOException)
        {
            return false;
        }
    });

    [Fact]
    public void Disposing_the_device_clunks_every_fid_and_closes_their_host_fds()
    {
        string file = Path.Combine(_dir, "open-at-disconnect");
        File.WriteAllText(file, "data");
        _client.Walk(Root, 1, "open-at-disconnect").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
        Assert.Equal(1, OpenFds(file));

        var device = new Virtio9pDevice("t", _client.Server, 1, NullLogger.Instance);
        device.Dispose();
        Assert.True(device.WaitForWorkers(TimeSpan.FromSeconds(10)));

        Assert.Equal(0, _client.Server.FidCount);
        Assert.Equal(0, OpenFds(file));
        Assert.Equal(2, _client.Walk(1, 2).Errno); // ENOENT: the old session's fids are gone
    }

    [Fact]
    public void An_open_still_running_when_the_session_ends_closes_its_fd_when_it_finishes()
    {
        string file = Path.Combine(_dir, "slow-open");
        File.WriteAllText(file, "data");
        _client.Walk(Root, 1, "slow-open").Expect(T.Rwalk);
        _fs.Armed = true;
        var other = new P9TestClient(_client.Server);
        var opener = new Thread(() => other.Call(T.Tlopen, b => b.U32(1).U32(0)));
        opener.Start();
        Assert.True(_fs.Entered.Wait(TimeSpan.FromSeconds(10)));

        _client.Server.EndSession(); // the front-end left while the helper was opening
        Assert.Equal(0, _client.Server.FidCount);
        _fs.Release.Set();
        Assert.True(opener.Join(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, OpenFds(file));
    }

    [Fact]
    public void Read_and_write_into_revoked_buffers_answer_EIO_and_move_no_data()
    {
        string file = Path.Combine(_dir, "revoked");
        File.WriteAllText(file, "original");
        _client.Walk(Root, 1, "revoked").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen); // O_RDWR
        _client.BuffersRevoked = true;

        P9TestClient.Reply read = _client.Call(T.Tread, b => b.U32(1).U64(0).U32(8));
        Assert.Equal(5, read.Errno); // EIO
        P9TestClient.Reply write = _client.Call(T.Twrite, b => b.U32(1).U64(0).U32(8).Bytes("REPLACED"u8.ToArray()));
        Assert.Equal(5, write.Errno);
        Assert.Equal("original", File.ReadAllText(file));
    }
}

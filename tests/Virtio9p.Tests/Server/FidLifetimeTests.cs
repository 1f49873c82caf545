using VirtFs.Virtio9p.FileSystem;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Issue 13 item 6: a fid clunked (or dropped by Tversion) while other requests use it. Every request
/// gets a reply (Rlerror at worst), nothing throws, and lock owners do not outlive the fids.</summary>
public sealed class FidLifetimeTests : IDisposable
{
    private const uint Root = 0;
    private readonly string _dir;
    private readonly LocalFileSystem _local;
    private readonly GatedFileSystem _fs;
    private readonly P9TestClient _client;

    public FidLifetimeTests()
    {
        _dir = Directory.CreateTempSubdirectory("p9fids-").FullName;
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

    /// <summary>Tversion (which drops every fid) lands while a Tlock waits for the helper to open the owner's
    /// fd: the Tlock still answers, and once it is done no owner fd is left behind.</summary>
    [Theory]
    [InlineData(0)] // the owner's reopen works
    [InlineData(-13)] // EACCES: the lock falls back to a duplicate of the fid's own fd
    public void Tversion_during_a_Tlock_answers_and_leaks_no_lock_owner(int reopenResult)
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
        _fs.OpenResult = reopenResult;
        _fs.Armed = true;

        var other = new P9TestClient(_client.Server);
        P9TestClient.Reply? lockReply = null;
        Exception? failure = null;
        var locker = new Thread(() =>
        {
            try
            {
                lockReply = other.Call(T.Tlock, b => b.U32(1).U8(1).U32(0).U64(0).U64(0).U32(42).Str("guest"));
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        locker.Start();
        Assert.True(_fs.Entered.Wait(TimeSpan.FromSeconds(10)));
        _client.Call(T.Tversion, b => b.U32(8192).Str("9P2000.L")).Expect(T.Rversion);
        _fs.Release.Set();
        Assert.True(locker.Join(TimeSpan.FromSeconds(10)));

        Assert.Null(failure);
        Assert.NotNull(lockReply);
        Assert.True(lockReply.Type is T.Rlock or T.Rlerror, $"reply {lockReply.Type}");
        Assert.Equal(0, _client.Server.FidCount);
        Assert.Equal(0, _client.Server.LockOwnerCount);
    }

    /// <summary>Tclunk and re-open of fids in a loop against Tread, Treaddir, Tfsync and Tlock on those fids
    /// from another worker: every request gets a well-formed reply, no exception leaves the server.</summary>
    [Fact]
    public void Clunk_racing_io_on_the_fid_answers_every_request()
    {
        File.WriteAllBytes(Path.Combine(_dir, "f"), new byte[4096]);
        Directory.CreateDirectory(Path.Combine(_dir, "d"));
        for (int i = 0; i < 32; i++)
        {
            File.WriteAllText(Path.Combine(_dir, "d", $"e{i}"), "");
        }
        var io = new P9TestClient(_client.Server);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        Exception? failure = null;
        int bad = 0;
        var reader = new Thread(() =>
        {
            try
            {
                while (!stop.IsCancellationRequested && failure is null)
                {
                    Check(io.Call(T.Tread, b => b.U32(1).U64(0).U32(4096)), T.Rread);
                    Check(io.Call(T.Treaddir, b => b.U32(2).U64(0).U32(8192)), T.Rreaddir);
                    Check(io.Call(T.Tfsync, b => b.U32(1).U32(0)), T.Rfsync);
                    Check(io.Call(T.Tlock, b => b.U32(1).U8(0).U32(0).U64(0).U64(0).U32(7).Str("guest")), T.Rlock);
                    // Unlock and query go through the owner's fd without referencing it from this fid: the fid
                    // that did (an earlier fid 1) may be releasing it right now.
                    Check(io.Call(T.Tlock, b => b.U32(1).U8(2).U32(0).U64(0).U64(0).U32(7).Str("guest")), T.Rlock);
                    Check(io.Call(T.Tgetlock, b => b.U32(1).U8(1).U64(0).U64(0).U32(7).Str("guest")), T.Rgetlock);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        reader.Start();
        while (!stop.IsCancellationRequested && failure is null)
        {
            _client.Walk(Root, 1, "f").Expect(T.Rwalk);
            _client.Walk(Root, 2, "d").Expect(T.Rwalk);
            _client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
            _client.Call(T.Tlopen, b => b.U32(2).U32(0x10000)).Expect(T.Rlopen); // O_DIRECTORY
            _client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
            _client.Call(T.Tclunk, b => b.U32(2)).Expect(T.Rclunk);
        }
        Assert.True(reader.Join(TimeSpan.FromSeconds(10)));
        Assert.Null(failure);
        Assert.Equal(0, bad);
        Assert.Equal(0, _client.Server.LockOwnerCount);

        void Check(P9TestClient.Reply reply, T expected)
        {
            if (reply.Bytes.Length == 0 || reply.Size != reply.Bytes.Length || (reply.Type != expected && reply.Type != T.Rlerror))
            {
                Interlocked.Increment(ref bad);
            }
        }
    }

    /// <summary>Issue 13 item 7: Twalk with newfid == fid on an open fid is EINVAL (QEMU v9fs_walk), so a fid never
    /// names one file while holding another's fd. A fid that is not open still walks in place.</summary>
    [Fact]
    public void Walk_in_place_of_an_open_fid_is_einval()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "d"));
        File.WriteAllText(Path.Combine(_dir, "d", "e"), "");
        _client.Walk(Root, 1, "d").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(0x10000)).Expect(T.Rlopen);
        Assert.Equal(22, _client.Walk(1, 1, "e").Errno);
        Assert.Equal(22, _client.Walk(1, 1).Errno);
        // The fid still names the directory it has open.
        _client.Call(T.Treaddir, b => b.U32(1).U64(0).U32(8192)).Expect(T.Rreaddir);

        _client.Walk(Root, 2, "d").Expect(T.Rwalk);
        _client.Walk(2, 2, "e").Expect(T.Rwalk);
        _client.Call(T.Txattrwalk, b => b.U32(2).U32(3).Str("")).Expect(T.Rxattrwalk);
        Assert.Equal(22, _client.Walk(3, 3).Errno); // an xattr fid is not a path fid either
    }

    /// <summary>An unlock or Tgetlock through a fid that never locked uses the owner's fd without holding the
    /// owner; the only fid that did may be clunked at that moment, closing that fd.</summary>
    [Fact]
    public void Unlock_through_another_fid_racing_the_owners_last_clunk_answers()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen);
        var io = new P9TestClient(_client.Server);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        Exception? failure = null;
        int bad = 0;
        var unlocker = new Thread(() =>
        {
            try
            {
                while (!stop.IsCancellationRequested && failure is null)
                {
                    var r = io.Call(T.Tlock, b => b.U32(1).U8(2).U32(0).U64(0).U64(0).U32(7).Str("guest"));
                    var q = io.Call(T.Tgetlock, b => b.U32(1).U8(1).U64(0).U64(0).U32(7).Str("guest"));
                    if (r.Type != T.Rlock || q.Type != T.Rgetlock)
                    {
                        Interlocked.Increment(ref bad);
                    }
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        unlocker.Start();
        while (!stop.IsCancellationRequested && failure is null)
        {
            _client.Walk(Root, 2, "f").Expect(T.Rwalk);
            _client.Call(T.Tlopen, b => b.U32(2).U32(2)).Expect(T.Rlopen);
            _client.Call(T.Tlock, b => b.U32(2).U8(0).U32(0).U64(0).U64(1).U32(7).Str("guest")).Expect(T.Rlock);
            _client.Call(T.Tclunk, b => b.U32(2)).Expect(T.Rclunk);
        }
        Assert.True(unlocker.Join(TimeSpan.FromSeconds(10)));
        Assert.Null(failure);
        Assert.Equal(0, bad);
    }
}

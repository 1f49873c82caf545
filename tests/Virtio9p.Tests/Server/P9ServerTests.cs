using System.Buffers.Binary;
using System.Text;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>The 9P server end to end over an in-process filesystem: the messages the Linux client sends,
/// byte for byte, and what lands on the host.</summary>
public sealed class P9ServerTests : IDisposable
{
    private const uint Root = 0;
    private readonly string _dir;
    private readonly LocalFileSystem _fs;
    private readonly P9TestClient _client;

    public P9ServerTests()
    {
        _dir = Directory.CreateTempSubdirectory("p9server-").FullName;
        _fs = new LocalFileSystem(_dir);
        _client = new P9TestClient(_fs);
        _client.Handshake(Root);
    }

    public void Dispose()
    {
        _fs.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Version_clamps_msize_and_names_unknown_dialects()
    {
        var reply = _client.Call(T.Tversion, b => b.U32(16 * 1024 * 1024).Str("9P2000.L")).Expect(T.Rversion);
        Assert.Equal((uint)P9Limits.MaxMessageSize, reply.U32());
        Assert.Equal("9P2000.L", reply.Str());

        reply = _client.Call(T.Tversion, b => b.U32(8192).Str("9P2000.u")).Expect(T.Rversion);
        Assert.Equal(8192u, reply.U32());
        Assert.Equal("unknown", reply.Str());
    }

    [Fact]
    public void Version_clunks_every_fid()
    {
        _client.Walk(Root, 1).Expect(T.Rwalk);
        _client.Call(T.Tversion, b => b.U32(8192).Str("9P2000.L")).Expect(T.Rversion);
        Assert.Equal(2, _client.Call(T.Tgetattr, b => b.U32(1).U64(0x7ff)).Errno); // ENOENT: fid gone
    }

    [Fact]
    public void Walk_reports_partial_progress_and_creates_no_fid()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "a/b"));
        var reply = _client.Walk(Root, 1, "a", "b", "missing", "x").Expect(T.Rwalk);
        Assert.Equal(2, reply.U16());
        Assert.Equal(Qid.TypeDir, reply.Qid().Type);
        Assert.Equal(2, _client.Call(T.Tclunk, b => b.U32(1)).Errno);

        Assert.Equal(2, _client.Walk(Root, 1, "missing").Errno); // first step fails: Rlerror
    }

    [Fact]
    public void Dotdot_at_the_root_stays_at_the_root()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "d"));
        var rootQid = _client.Call(T.Tgetattr, b => b.U32(Root).U64(0x7ff)).Expect(T.Rgetattr);
        rootQid.U64();
        ulong rootPath = rootQid.Qid().Path;

        var reply = _client.Walk(Root, 1, "..", "..", "d", "..", "..").Expect(T.Rwalk);
        Assert.Equal(5, reply.U16());
        for (int i = 0; i < 4; i++) reply.Qid();
        Assert.Equal(rootPath, reply.Qid().Path);
    }

    [Fact]
    public void Walk_refuses_more_than_16_names_and_bad_names()
    {
        Assert.Equal(22, _client.Walk(Root, 1, Enumerable.Repeat("a", 17).ToArray()).Errno);
        Assert.Equal(22, _client.Walk(Root, 1, "a/b").Errno);
        Assert.Equal(22, _client.Walk(Root, 1, "").Errno);
    }

    [Fact]
    public void Create_write_read_round_trip_through_scattered_buffers()
    {
        _client.Walk(Root, 1).Expect(T.Rwalk);
        _client.Call(T.Tlcreate, b => b.U32(1).Str("f").U32(2).U32(0x1A4 /* 0644 */).U32(0)).Expect(T.Rlcreate);

        byte[] data = new byte[100_000];
        new Random(7).NextBytes(data);
        // Twrite with its data split over "guest pages" at odd points.
        var write = _client.Call(T.Twrite, b => b.U32(1).U64(0).U32((uint)data.Length).Bytes(data),
            requestSplits: [23, 1000, 4096, 50_001]).Expect(T.Rwrite);
        Assert.Equal((uint)data.Length, write.U32());
        Assert.Equal(data, File.ReadAllBytes(Path.Combine(_dir, "f")));

        // Tread with the reply header in its own 11-byte descriptor, like the Linux zero-copy path.
        var read = _client.Call(T.Tread, b => b.U32(1).U64(10).U32(90_000),
            replyCapacity: 11 + 90_000, replySplits: [11, 4096, 8192, 70_000]).Expect(T.Rread);
        uint count = read.U32();
        Assert.Equal(90_000u, count);
        Assert.Equal(data[10..90_010], read.Take((int)count));

        // Short read at end of file.
        read = _client.Call(T.Tread, b => b.U32(1).U64(99_990).U32(4096)).Expect(T.Rread);
        Assert.Equal(10u, read.U32());
    }

    [Fact]
    public void Write_whose_count_disagrees_with_the_data_is_einval()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "x");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen);
        Assert.Equal(22, _client.Call(T.Twrite, b => b.U32(1).U64(0).U32(10).Bytes(new byte[4])).Errno);
        Assert.Equal("x", File.ReadAllText(Path.Combine(_dir, "f")));
    }

    [Fact]
    public void Readdir_returns_every_entry_once_across_calls()
    {
        for (int i = 0; i < 300; i++) File.WriteAllText(Path.Combine(_dir, $"file-{i:D4}-{new string('n', i % 50)}"), "");
        _client.Walk(Root, 1).Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);

        var names = new List<string>();
        ulong offset = 0;
        int calls = 0;
        while (true)
        {
            var reply = _client.Call(T.Treaddir, b => b.U32(1).U64(offset).U32(2048)).Expect(T.Rreaddir);
            calls++;
            uint count = reply.U32();
            if (count == 0) break;
            Assert.True(count <= 2048);
            int end = 11 + (int)count;
            while (!reply.AtEnd)
            {
                reply.Qid();
                offset = reply.U64();
                reply.U8();
                names.Add(reply.Str());
            }
            Assert.Equal(end, reply.Bytes.Length);
        }
        Assert.True(calls > 5);
        Assert.Equal(302, names.Count); // . and ..
        Assert.Equal(names.Count, names.Distinct().Count());
    }

    [Fact]
    public void Readdir_can_seek_back_to_an_earlier_cookie()
    {
        for (int i = 0; i < 50; i++) File.WriteAllText(Path.Combine(_dir, $"e{i}"), "");
        _client.Walk(Root, 1).Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
        var first = _client.Call(T.Treaddir, b => b.U32(1).U64(0).U32(200)).Expect(T.Rreaddir);
        first.U32();
        first.Qid();
        ulong cookie = first.U64();
        first.U8();
        first.Str();
        string second = NextName(first);
        _client.Call(T.Treaddir, b => b.U32(1).U64(0).U32(4000)).Expect(T.Rreaddir); // read on
        var again = _client.Call(T.Treaddir, b => b.U32(1).U64(cookie).U32(200)).Expect(T.Rreaddir);
        again.U32();
        again.Qid();
        again.U64();
        again.U8();
        Assert.Equal(second, again.Str());

        static string NextName(P9TestClient.Reply r) { r.Qid(); r.U64(); r.U8(); return r.Str(); }
    }

    [Fact]
    public void Mkdir_unlinkat_and_enotempty()
    {
        _client.Call(T.Tmkdir, b => b.U32(Root).Str("d").U32(0x1ED /* 0755 */).U32(0)).Expect(T.Rmkdir);
        _client.Walk(Root, 1, "d").Expect(T.Rwalk);
        _client.Call(T.Tlcreate, b => b.U32(1).Str("f").U32(1).U32(0x180 /* 0600 */).U32(0)).Expect(T.Rlcreate);
        Assert.Equal(39, _client.Call(T.Tunlinkat, b => b.U32(Root).Str("d").U32(0x200)).Errno);
        Assert.Equal(21, _client.Call(T.Tunlinkat, b => b.U32(Root).Str("d").U32(0)).Errno);
        _client.Walk(Root, 2, "d").Expect(T.Rwalk);
        _client.Call(T.Tunlinkat, b => b.U32(2).Str("f").U32(0)).Expect(T.Runlinkat);
        _client.Call(T.Tunlinkat, b => b.U32(Root).Str("d").U32(0x200)).Expect(T.Runlinkat);
        Assert.False(Directory.Exists(Path.Combine(_dir, "d")));
    }

    [Fact]
    public void Open_fid_keeps_working_after_unlink()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "hello");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
        _client.Call(T.Tunlinkat, b => b.U32(Root).Str("f").U32(0)).Expect(T.Runlinkat);
        var read = _client.Call(T.Tread, b => b.U32(1).U64(0).U32(100)).Expect(T.Rread);
        Assert.Equal("hello", Encoding.UTF8.GetString(read.Take((int)read.U32())));
        var attr = _client.Call(T.Tgetattr, b => b.U32(1).U64(0x7ff)).Expect(T.Rgetattr);
        attr.U64(); attr.Qid(); attr.U32(); attr.U32(); attr.U32();
        Assert.Equal(0UL, attr.U64()); // nlink
    }

    [Fact]
    public void Getattr_reports_gen_for_open_files_where_the_host_keeps_one()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "x");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        const ulong All = 0x3fff, Gen = 0x1000;
        Assert.Equal(0UL, _client.Call(T.Tgetattr, b => b.U32(1).U64(All)).Expect(T.Rgetattr).U64() & Gen);
        _client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
        ulong valid = _client.Call(T.Tgetattr, b => b.U32(1).U64(All)).Expect(T.Rgetattr).U64();
        Assert.Equal(0x7ffUL, valid & 0x7ff);
        // ext4 (what the temp dir is on in the lab) keeps a generation; tmpfs does not.
        bool ext4 = new DriveInfo(_dir).DriveFormat.StartsWith("ext", StringComparison.Ordinal);
        Assert.Equal(ext4 ? Gen : 0, valid & Gen);
        Assert.Equal(0UL, _client.Call(T.Tgetattr, b => b.U32(1).U64(0x7ff)).Expect(T.Rgetattr).U64() & Gen);
    }

    [Fact]
    public void Ftruncate_of_an_unlinked_open_file_works()
    {
        // What the Linux client sends for ftruncate(2): SIZE | MTIME | CTIME (times "now") on the open fid.
        File.WriteAllText(Path.Combine(_dir, "f"), "0123456789");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen);
        _client.Call(T.Tunlinkat, b => b.U32(Root).Str("f").U32(0)).Expect(T.Runlinkat);
        _client.Call(T.Tsetattr, b => b.U32(1).U32(0x8 | 0x20 | 0x40).U32(0).U32(0).U32(0).U64(4)
            .U64(0).U64(0).U64(0).U64(0)).Expect(T.Rsetattr);
        var attr = _client.Call(T.Tgetattr, b => b.U32(1).U64(0x7ff)).Expect(T.Rgetattr);
        attr.U64(); attr.Qid(); attr.U32(); attr.U32(); attr.U32(); attr.U64(); attr.U64();
        Assert.Equal(4UL, attr.U64()); // size
    }

    [Fact]
    public void Rename_moves_fids_below_the_renamed_directory()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "old/sub"));
        File.WriteAllText(Path.Combine(_dir, "old/sub/f"), "data");
        _client.Walk(Root, 1, "old", "sub", "f").Expect(T.Rwalk);
        _client.Call(T.Trenameat, b => b.U32(Root).Str("old").U32(Root).Str("new")).Expect(T.Rrenameat);
        // The fid follows the file: getattr by path still finds it under its new name.
        _client.Call(T.Tgetattr, b => b.U32(1).U64(0x7ff)).Expect(T.Rgetattr);
        _client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
        Assert.True(File.Exists(Path.Combine(_dir, "new/sub/f")));
    }

    [Fact]
    public void Rename_into_itself_is_einval()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "a"));
        _client.Walk(Root, 1, "a").Expect(T.Rwalk);
        Assert.Equal(22, _client.Call(T.Trenameat, b => b.U32(Root).Str("a").U32(1).Str("b")).Errno);
    }

    [Fact]
    public void Symlink_readlink_link_and_nlink()
    {
        File.WriteAllText(Path.Combine(_dir, "target"), "t");
        _client.Call(T.Tsymlink, b => b.U32(Root).Str("sl").Str("target").U32(0)).Expect(T.Rsymlink);
        _client.Walk(Root, 1, "sl").Expect(T.Rwalk);
        var link = _client.Call(T.Treadlink, b => b.U32(1)).Expect(T.Rreadlink);
        Assert.Equal("target", link.Str());

        _client.Walk(Root, 2, "target").Expect(T.Rwalk);
        _client.Call(T.Tlink, b => b.U32(Root).U32(2).Str("hard")).Expect(T.Rlink);
        var attr = _client.Call(T.Tgetattr, b => b.U32(2).U64(0x7ff)).Expect(T.Rgetattr);
        attr.U64(); attr.Qid(); attr.U32(); attr.U32(); attr.U32();
        Assert.Equal(2UL, attr.U64());
    }

    [Fact]
    public void Setattr_mode_size_and_times()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "0123456789");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Call(T.Tsetattr, b => b.U32(1).U32(0x1 | 0x8).U32(0x1A0 /* 0640 */).U32(0).U32(0).U64(4)
            .U64(0).U64(0).U64(0).U64(0)).Expect(T.Rsetattr);
        // Times in a separate request: a truncate that changes the size also sets mtime to now.
        _client.Call(T.Tsetattr, b => b.U32(1).U32(0x20 | 0x100).U32(0).U32(0).U32(0).U64(0)
            .U64(0).U64(0).U64(1_000_000).U64(5)).Expect(T.Rsetattr);
        var info = new FileInfo(Path.Combine(_dir, "f"));
        Assert.Equal(4, info.Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(info.FullName));
        Assert.Equal(1_000_000, new DateTimeOffset(info.LastWriteTimeUtc).ToUnixTimeSeconds());
    }

    [Fact]
    public void Statfs_reports_the_host_filesystem()
    {
        var reply = _client.Call(T.Tstatfs, b => b.U32(Root)).Expect(T.Rstatfs);
        reply.U32();
        Assert.True(reply.U32() > 0); // bsize
        Assert.True(reply.U64() > 0); // blocks
    }

    [Fact]
    public void Xattr_set_get_list_remove()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        byte[] value = Encoding.UTF8.GetBytes("blue");
        _client.Call(T.Txattrcreate, b => b.U32(1).Str("user.color").U64((ulong)value.Length).U32(0)).Expect(T.Rxattrcreate);
        _client.Call(T.Twrite, b => b.U32(1).U64(0).U32((uint)value.Length).Bytes(value)).Expect(T.Rwrite);
        _client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);

        _client.Walk(Root, 2, "f").Expect(T.Rwalk);
        var walk = _client.Call(T.Txattrwalk, b => b.U32(2).U32(3).Str("user.color")).Expect(T.Rxattrwalk);
        Assert.Equal(4UL, walk.U64());
        var read = _client.Call(T.Tread, b => b.U32(3).U64(0).U32(100)).Expect(T.Rread);
        Assert.Equal("blue", Encoding.UTF8.GetString(read.Take((int)read.U32())));

        var list = _client.Call(T.Txattrwalk, b => b.U32(2).U32(4).Str("")).Expect(T.Rxattrwalk);
        Assert.True(list.U64() >= (ulong)"user.color\0".Length);

        _client.Walk(Root, 5, "f").Expect(T.Rwalk);
        _client.Call(T.Txattrcreate, b => b.U32(5).Str("user.color").U64(0).U32(2)).Expect(T.Rxattrcreate);
        _client.Call(T.Tclunk, b => b.U32(5)).Expect(T.Rclunk);
        Assert.Equal(61, _client.Call(T.Txattrwalk, b => b.U32(2).U32(6).Str("user.color")).Errno); // ENODATA
    }

    [Fact]
    public void Locks_of_different_owners_conflict_and_never_block()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Walk(Root, 2, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen);
        _client.Call(T.Tlopen, b => b.U32(2).U32(0)).Expect(T.Rlopen); // read-only, like flock(1)
        Assert.Equal(0, Lock(1, 1, 42).U8());
        Assert.Equal(1, Lock(2, 1, 43).U8()); // BLOCKED, answered at once
        Assert.Equal(0, Lock(1, 2, 42).U8()); // unlock
        Assert.Equal(0, Lock(2, 1, 43).U8()); // write lock through a read-only fid

        P9TestClient.Reply Lock(uint fid, byte type, uint proc) => _client.Call(T.Tlock,
            b => b.U32(fid).U8(type).U32(1).U64(0).U64(0).U32(proc).Str("guest")).Expect(T.Rlock);
    }

    /// <summary>The Linux client wakes a local F_SETLKW waiter before its unlock Tlock reaches the server; a blocking
    /// Tlock that meets the lock just before its release must be granted, not answered BLOCKED (the client would
    /// sleep 30 s before asking again). Non-blocking requests and locks still held answer BLOCKED promptly.</summary>
    [Fact]
    public void A_blocking_lock_released_meanwhile_is_granted_not_answered_blocked()
    {
        string path = Path.Combine(_dir, "g");
        File.WriteAllText(path, "x");
        _client.Walk(Root, 1, "g").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen);
        // The conflicting lock: a host process's POSIX record lock (they conflict with the server's OFD locks).
        using var host = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        host.Lock(0, 1);
        Assert.Equal(1, Lock(flags: 0)); // non-blocking: BLOCKED
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(1, Lock(flags: 1)); // blocking, still held: BLOCKED after the short tries
        Assert.True(clock.ElapsedMilliseconds < 3000, $"{clock.ElapsedMilliseconds} ms");
        // A thread of its own, not the thread pool: under a full test run the pool can start a queued task later
        // than the server's ~300 ms of short tries (CI saw it once), and the test would fail for the wrong reason.
        var release = new Thread(() =>
        {
            Thread.Sleep(30);
            host.Unlock(0, 1);
        }) { IsBackground = true };
        release.Start();
        Assert.Equal(0, Lock(flags: 1)); // released meanwhile: granted
        release.Join();

        byte Lock(uint flags) => _client.Call(T.Tlock,
            b => b.U32(1).U8(1).U32(flags).U64(0).U64(0).U32(42).Str("guest")).Expect(T.Rlock).U8();
    }

    [Fact]
    public void Locks_belong_to_the_guest_process_not_to_the_fid()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Walk(Root, 2, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen);
        _client.Call(T.Tlopen, b => b.U32(2).U32(0)).Expect(T.Rlopen);
        const uint Process = 42, Other = 43;

        // One process locking overlapping ranges through two fds does not conflict with itself...
        Assert.Equal(0, Lock(1, 1, 0, 10, Process));
        Assert.Equal(0, Lock(2, 1, 5, 10, Process));
        // ...but another process does, through either fid (processes sharing an fd after fork).
        Assert.Equal(1, Lock(1, 1, 12, 1, Other));
        Assert.Equal(1, Lock(2, 0, 0, 1, Other));
        var conflict = _client.Call(T.Tgetlock,
            b => b.U32(1).U8(1).U64(0).U64(0).U32(Other).Str("guest")).Expect(T.Rgetlock);
        Assert.Equal(1, conflict.U8());
        var own = _client.Call(T.Tgetlock,
            b => b.U32(2).U8(1).U64(0).U64(0).U32(Process).Str("guest")).Expect(T.Rgetlock);
        Assert.Equal(2, own.U8()); // F_GETLK ignores the asker's own locks

        // Unlocking through the other fd releases what the first one locked (POSIX close semantics).
        Assert.Equal(0, Lock(2, 2, 0, 0, Process));
        Assert.Equal(0, Lock(1, 1, 0, 0, Other));
        Assert.Equal(2, _client.Server.LockOwnerCount);

        // The owners' fds close with the last fid that locked through them, and their locks with them.
        _client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
        Assert.Equal(2, _client.Server.LockOwnerCount); // fid 2 locked for both owners too
        _client.Call(T.Tclunk, b => b.U32(2)).Expect(T.Rclunk);
        Assert.Equal(0, _client.Server.LockOwnerCount);
        _client.Walk(Root, 3, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(3).U32(2)).Expect(T.Rlopen);
        Assert.Equal(0, Lock(3, 1, 0, 0, Process));

        byte Lock(uint fid, byte type, ulong start, ulong length, uint proc) => _client.Call(T.Tlock,
            b => b.U32(fid).U8(type).U32(0).U64(start).U64(length).U32(proc).Str("guest")).Expect(T.Rlock).U8();
    }

    [Fact]
    public void Lock_owners_are_bounded_against_a_guest_naming_endless_processes()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "");
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen);
        for (uint proc = 0; proc < VirtFs.Virtio9p.Server.LockOwners.MaxOwners; proc++)
        {
            uint start = proc;
            _client.Call(T.Tlock, b => b.U32(1).U8(1).U32(0).U64(start).U64(1).U32(start).Str("guest")).Expect(T.Rlock);
        }
        Assert.Equal(37, _client.Call(T.Tlock, // ENOLCK
            b => b.U32(1).U8(1).U32(0).U64(99999).U64(1).U32(99999).Str("guest")).Errno);
        // Owners that exist still lock and unlock; clunking the fid closes every owner's fd.
        _client.Call(T.Tlock, b => b.U32(1).U8(2).U32(0).U64(0).U64(0).U32(7).Str("guest")).Expect(T.Rlock);
        _client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
        Assert.Equal(0, _client.Server.LockOwnerCount);
    }

    /// <summary>A front-end that goes away between a request's header and its body leaves the worker's buffer
    /// holding the previous request: serving that would repeat a change the guest never asked for again (here a
    /// Tmkdir of a name the host removed meanwhile). The request is dropped instead.</summary>
    [Fact]
    public void A_request_whose_body_cannot_be_read_is_dropped_not_served_from_stale_bytes()
    {
        _client.Call(T.Tmkdir, b => b.U32(Root).Str("d1").U32(0x1ED).U32(0)).Expect(T.Rmkdir);
        Directory.Delete(Path.Combine(_dir, "d1"));
        _client.GoneAfterHeader = true;
        var reply = _client.Call(T.Tmkdir, b => b.U32(Root).Str("d2").U32(0x1ED).U32(0));
        _client.GoneAfterHeader = false;
        Assert.Empty(reply.Bytes);
        Assert.False(Directory.Exists(Path.Combine(_dir, "d1")));
        Assert.False(Directory.Exists(Path.Combine(_dir, "d2")));
        _client.Call(T.Tmkdir, b => b.U32(Root).Str("d3").U32(0x1ED).U32(0)).Expect(T.Rmkdir);
    }

    /// <summary>A write to a file opened O_SYNC or O_DSYNC waits for the disk: it goes to a worker, never onto the
    /// queue thread, where every other request of the ring would wait behind it.</summary>
    [Fact]
    public void Synchronous_writes_are_not_served_on_the_queue_thread()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "");
        uint[] flags = [1 /* O_WRONLY */, 1 | 0x1000 /* P9_DOTL_DSYNC */, 1 | 0x100000 /* P9_DOTL_SYNC */];
        for (uint fid = 1; fid <= flags.Length; fid++)
        {
            uint f = fid;
            _client.Walk(Root, fid, "f").Expect(T.Rwalk);
            _client.Call(T.Tlopen, b => b.U32(f).U32(flags[f - 1])).Expect(T.Rlopen);
        }
        Assert.True(_client.Server.IsNonBlocking(T.Twrite, 1u));
        Assert.False(_client.Server.IsNonBlocking(T.Twrite, 2u));
        Assert.False(_client.Server.IsNonBlocking(T.Twrite, 3u));
        _client.Call(T.Twrite, b => b.U32(3).U64(0).U32(2).Bytes("ok"u8.ToArray())).Expect(T.Rwrite);
        Assert.Equal("ok", File.ReadAllText(Path.Combine(_dir, "f")));
    }

    /// <summary>Attack: every open fid locks for every owner there is. The owners are bounded, but each fid kept a
    /// list of the owners it locked for, with a string per request: 16 384 fids x 4 096 owners is 67 M entries,
    /// tens of GB. The references, all fids together, are bounded too (ENOLCK past them).</summary>
    [Fact]
    public void Lock_owner_references_are_bounded_across_fids()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "");
        const int Owners = VirtFs.Virtio9p.Server.LockOwners.MaxOwners;
        int fids = VirtFs.Virtio9p.Server.LockOwners.MaxReferences / Owners + 1;
        int granted = 0, refused = 0;
        for (uint fid = 1; fid <= fids; fid++)
        {
            _client.Walk(Root, fid, "f").Expect(T.Rwalk);
            _client.Call(T.Tlopen, b => b.U32(fid).U32(2)).Expect(T.Rlopen);
            for (uint proc = 0; proc < Owners; proc++)
            {
                uint p = proc, f = fid;
                var reply = _client.Call(T.Tlock, b => b.U32(f).U8(0).U32(0).U64(p).U64(1).U32(p).Str("guest"));
                if (reply.Type == T.Rlock) granted++;
                else { Assert.Equal(37, reply.Errno); refused++; } // ENOLCK
            }
        }
        Assert.Equal(VirtFs.Virtio9p.Server.LockOwners.MaxReferences, granted);
        Assert.Equal(fids * Owners - granted, refused);
        // Clunking gives the references back: a new fid locks again.
        _client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
        _client.Walk(Root, 100, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(100).U32(2)).Expect(T.Rlopen);
        _client.Call(T.Tlock, b => b.U32(100).U8(0).U32(0).U64(0).U64(1).U32(0).Str("guest")).Expect(T.Rlock);
    }

    [Fact]
    public void Malformed_messages_get_rlerror_not_a_crash()
    {
        // size field lies
        byte[] lie = [50, 0, 0, 0, (byte)T.Tclunk, 1, 0, 0, 0, 0, 0];
        var reply = _client.Raw(lie, 8192);
        Assert.Equal(T.Rlerror, reply.Type);
        Assert.Equal(22, reply.Errno);

        // truncated body
        byte[] shortClunk = [9, 0, 0, 0, (byte)T.Tclunk, 1, 0, 0, 0];
        Assert.Equal(22, _client.Raw(shortClunk, 8192).Errno);

        // unknown type
        Assert.Equal(95, _client.Call((T)200, b => b.U32(0)).Errno);

        // shorter than a header: nothing can be answered
        Assert.Empty(_client.Raw([1, 2, 3], 8192).Bytes);

        // string longer than the message
        Assert.Equal(22, _client.Call(T.Twalk, b => b.U32(0).U32(1).U16(1).U16(500).Bytes(new byte[3])).Errno);
    }

    [Fact]
    public void Reply_that_does_not_fit_the_guest_buffer_is_emsgsize()
    {
        var reply = _client.Call(T.Tgetattr, b => b.U32(Root).U64(0x7ff), replyCapacity: 64);
        Assert.Equal(90, reply.Errno);
    }

    [Fact]
    public void Names_dot_and_dotdot_cannot_be_created()
    {
        Assert.Equal(17, _client.Call(T.Tmkdir, b => b.U32(Root).Str("..").U32(0x1ED /* 0755 */).U32(0)).Errno);
        Assert.Equal(17, _client.Call(T.Tmkdir, b => b.U32(Root).Str(".").U32(0x1ED /* 0755 */).U32(0)).Errno);
        Assert.Equal(22, _client.Call(T.Tmkdir, b => b.U32(Root).Str("a/b").U32(0x1ED /* 0755 */).U32(0)).Errno);
    }
}

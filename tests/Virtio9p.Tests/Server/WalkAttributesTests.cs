using Microsoft.Win32.SafeHandles;
using VirtFs.Virtio9p.Protocol;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Tests.FileSystem;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>The first Tgetattr after a walk answers from the walk's lstat (issue 14: one helper round trip per
/// lookup instead of two), and only while nothing can have changed the file meanwhile.</summary>
public sealed class WalkAttributesTests : IDisposable
{
    private const uint Root = 0;
    private const ulong Basic = 0x7ff;
    private readonly string _dir;
    private readonly LocalFileSystem _local;
    private readonly CountingFileSystem _fs;
    private readonly P9TestClient _client;

    public WalkAttributesTests()
    {
        _dir = Directory.CreateTempSubdirectory("walkattr-").FullName;
        _local = new LocalFileSystem(_dir);
        _fs = new CountingFileSystem(_local);
        _client = new P9TestClient(_fs);
        _client.Handshake(Root);
        // A minute, not 10 ms: the shortcut's tests must not depend on how fast a busy host runs them. The tests
        // of its expiry set the production lifetime back.
        _client.Server.WalkAttributesLifetime = System.Diagnostics.Stopwatch.Frequency * 60;
        File.WriteAllBytes(Path.Combine(_dir, "f"), new byte[10]);
    }

    public void Dispose()
    {
        _local.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Rgetattr's size field (valid, qid, mode, uid, gid, nlink, rdev, then size).</summary>
    private ulong SizeOf(uint fid)
    {
        var reply = _client.Call(T.Tgetattr, b => b.U32(fid).U64(Basic)).Expect(T.Rgetattr);
        reply.U64(); reply.Qid(); reply.U32(); reply.U32(); reply.U32(); reply.U64(); reply.U64();
        return reply.U64();
    }

    /// <summary>fid[4] newfid[4] nwname[2], the Twalk fields the queue thread peeks.</summary>
    private static byte[] WalkFields(uint fid, uint newFid, ushort names)
    {
        var b = new byte[10];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, fid);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), newFid);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(8), names);
        return b;
    }

    [Fact]
    public void A_clone_walk_is_served_on_the_queue_thread_and_asks_the_host_nothing()
    {
        Assert.True(_client.Server.IsNonBlocking(T.Twalk, WalkFields(Root, 1, 0)));
        Assert.False(_client.Server.IsNonBlocking(T.Twalk, WalkFields(Root, 1, 1)));    // a lookup: the helper
        Assert.False(_client.Server.IsNonBlocking(T.Twalk, WalkFields(Root, Root, 0))); // in place: fid.Sync
        Assert.False(_client.Server.IsNonBlocking(T.Twalk, WalkFields(Root, 1, 0).AsSpan(0, 8))); // not all peeked
        int before = _fs.Lstats;
        _client.Walk(Root, 1).Expect(T.Rwalk);
        Assert.Equal(before, _fs.Lstats);
        Assert.True(_client.Server.IsNonBlocking(T.Tclunk, WalkFields(1, 0, 0).AsSpan(0, 4)));
        _client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
    }

    /// <summary>Rgetattr's mode field (after valid and qid).</summary>
    private uint ModeOf(uint fid)
    {
        var reply = _client.Call(T.Tgetattr, b => b.U32(fid).U64(Basic)).Expect(T.Rgetattr);
        reply.U64(); reply.Qid();
        return reply.U32();
    }

    [Fact]
    public void A_clunked_fid_whose_object_becomes_another_fid_does_not_answer_with_the_old_walk()
    {
        // Fid 1 walks to the file f; its attributes are kept for the fid's object, in slot 1 of 64.
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        object? walked = _client.Server.FidObject(1);
        _client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
        // Fid 65 (the same slot) is a clone of the root: the released object, made new, and nothing kept for it.
        _client.Walk(Root, 65).Expect(T.Rwalk);
        Assert.Same(walked, _client.Server.FidObject(65));
        Assert.False(_client.Server.IsNonBlocking(T.Tgetattr, 65));
        Assert.Equal(0x4000u, ModeOf(65) & 0xF000u); // the root, a directory: not f's attributes
    }

    [Fact]
    public void A_clunked_fid_whose_object_is_attached_again_does_not_answer_with_the_old_walk()
    {
        _client.Walk(Root, 2, "f").Expect(T.Rwalk);
        object? walked = _client.Server.FidObject(2);
        _client.Call(T.Tclunk, b => b.U32(2)).Expect(T.Rclunk);
        _client.Call(T.Tattach, b => b.U32(66).U32(P9Limits.NoFid).Str("u").Str("").U32(0)).Expect(T.Rattach);
        Assert.Same(walked, _client.Server.FidObject(66));
        Assert.Equal(0x4000u, ModeOf(66) & 0xF000u);
    }

    [Fact]
    public void A_repeated_lookup_shares_the_path_array_and_only_an_equal_path_is_shared()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "d"));
        File.WriteAllBytes(Path.Combine(_dir, "d", "f"), []);
        File.WriteAllBytes(Path.Combine(_dir, "df"), []);
        byte[] PathOf(uint fid) => ((VirtFs.Virtio9p.Server.Fid)_client.Server.FidObject(fid)!).Path;

        _client.Walk(Root, 1, "d").Expect(T.Rwalk);
        _client.Walk(1, 2, "f").Expect(T.Rwalk);
        _client.Walk(1, 3, "f").Expect(T.Rwalk);
        Assert.Equal("/d/f"u8.ToArray(), PathOf(2));
        Assert.Same(PathOf(2), PathOf(3));

        _client.Walk(Root, 4, "df").Expect(T.Rwalk); // the same bytes but the '/', from another directory
        Assert.Equal("/df"u8.ToArray(), PathOf(4));
        _client.Walk(Root, 5, "d").Expect(T.Rwalk);
        Assert.Same(PathOf(1), PathOf(5));
        _client.Walk(5, 6, "f").Expect(T.Rwalk);
        Assert.Same(PathOf(2), PathOf(6));
    }

    [Fact]
    public void The_first_getattr_after_a_walk_asks_the_host_nothing_and_the_next_one_does()
    {
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        int afterWalk = _fs.Lstats;
        Assert.True(_client.Server.IsNonBlocking(T.Tgetattr, 1)); // served on the queue thread
        Assert.Equal(10UL, SizeOf(1));
        Assert.Equal(afterWalk, _fs.Lstats);

        Assert.False(_client.Server.IsNonBlocking(T.Tgetattr, 1)); // used once
        Assert.Equal(10UL, SizeOf(1));
        Assert.Equal(afterWalk + 1, _fs.Lstats);
    }

    [Fact]
    public void A_change_served_between_walk_and_getattr_is_seen()
    {
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Walk(Root, 2, "f").Expect(T.Rwalk);
        // Tsetattr size 100 through the other fid: fid[4] valid[4] mode uid gid size[8] atime[16] mtime[16].
        _client.Call(T.Tsetattr, b => b.U32(2).U32(0x8).U32(0).U32(0).U32(0).U64(100).U64(0).U64(0).U64(0).U64(0))
            .Expect(T.Rsetattr);
        Assert.False(_client.Server.IsNonBlocking(T.Tgetattr, 1));
        Assert.Equal(100UL, SizeOf(1));
    }

    [Fact]
    public void A_host_change_is_seen_once_the_walk_is_older_than_its_lifetime()
    {
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        File.WriteAllBytes(Path.Combine(_dir, "f"), new byte[20]); // not through the server
        _client.Server.WalkAttributesLifetime = VirtFs.Virtio9p.Server.P9Server.DefaultWalkAttributesLifetime;
        Thread.Sleep(TimeSpan.FromMilliseconds(50)); // 5x the lifetime
        Assert.Equal(20UL, SizeOf(1));
    }

    [Fact]
    public void A_reused_fid_number_gets_nothing_from_the_old_walk()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "d"));
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
        _client.Walk(Root, 1).Expect(T.Rwalk); // a clone: no name walked, nothing kept
        int before = _fs.Lstats;
        var reply = _client.Call(T.Tgetattr, b => b.U32(1).U64(Basic)).Expect(T.Rgetattr);
        reply.U64();
        Assert.Equal(Qid.TypeDir, reply.Qid().Type); // the root, not the old walk's file
        Assert.Equal(before + 1, _fs.Lstats);
    }

    [Fact]
    public void An_opened_fid_is_stated_through_its_fd_not_the_walk()
    {
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        _client.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen); // O_RDWR
        File.WriteAllBytes(Path.Combine(_dir, "f"), new byte[30]); // same inode, truncated and rewritten
        Assert.Equal(30UL, SizeOf(1));
    }

    private const int ENOTDIR = 20, EISDIR = 21;

    /// <summary>Tunlinkat dfid[4] name[s] flags[4] in the root: 0 or the Rlerror's errno.</summary>
    private int Unlink(string name, uint flags) => _client.Call(T.Tunlinkat, b => b.U32(Root).Str(name).U32(flags)).Errno;

    [Fact]
    public void An_unlink_right_after_the_lookup_of_its_name_takes_the_type_from_the_walk()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "d"));
        // Each as the Linux client sends it: the lookup of the name (Twalk + Tgetattr), then Tunlinkat.
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        Assert.Equal(10UL, SizeOf(1));
        int before = _fs.Lstats;
        Assert.Equal(ENOTDIR, Unlink("f", 0x200)); // AT_REMOVEDIR on a file
        Assert.Equal(before, _fs.Lstats);

        _client.Walk(Root, 2, "d").Expect(T.Rwalk);
        before = _fs.Lstats;
        Assert.Equal(EISDIR, Unlink("d", 0)); // unlink of a directory
        Assert.Equal(before, _fs.Lstats);

        _client.Walk(Root, 3, "f").Expect(T.Rwalk);
        before = _fs.Lstats;
        Assert.Equal(0, Unlink("f", 0));
        Assert.Equal(before, _fs.Lstats); // only the removal went to the host
        Assert.False(File.Exists(Path.Combine(_dir, "f")));
        Assert.True(Directory.Exists(Path.Combine(_dir, "d")));
    }

    [Fact]
    public void An_unlink_after_a_change_served_since_the_walk_asks_the_host()
    {
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        Assert.Equal(0, Unlink("f", 0));
        // Tmkdir: dfid[4] name[s] mode[4] gid[4]. "f" is a directory now; the walk said file.
        _client.Call(T.Tmkdir, b => b.U32(Root).Str("f").U32(0x1ed).U32(0)).Expect(T.Rmkdir);
        int before = _fs.Lstats;
        Assert.Equal(EISDIR, Unlink("f", 0));
        Assert.True(Directory.Exists(Path.Combine(_dir, "f")));
        Assert.Equal(before + 1, _fs.Lstats);
    }

    [Fact]
    public void An_unlink_after_a_host_change_older_than_the_walk_lifetime_sees_it()
    {
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        File.Delete(Path.Combine(_dir, "f")); // not through the server
        Directory.CreateDirectory(Path.Combine(_dir, "f"));
        _client.Server.WalkAttributesLifetime = VirtFs.Virtio9p.Server.P9Server.DefaultWalkAttributesLifetime;
        Thread.Sleep(TimeSpan.FromMilliseconds(50)); // 5x the lifetime
        Assert.Equal(EISDIR, Unlink("f", 0));
        Assert.True(Directory.Exists(Path.Combine(_dir, "f")));
    }

    [Fact]
    public void An_unlink_of_another_name_than_the_walk_asks_the_host()
    {
        File.WriteAllBytes(Path.Combine(_dir, "g"), []);
        _client.Walk(Root, 1, "f").Expect(T.Rwalk);
        int before = _fs.Lstats;
        Assert.Equal(0, Unlink("g", 0));
        Assert.Equal(before + 1, _fs.Lstats);
        Assert.True(File.Exists(Path.Combine(_dir, "f")));
    }

    /// <summary>Counts lstat calls (a helper round trip each in production) and passes everything on.</summary>
    private sealed class CountingFileSystem(IFileSystem inner) : ForwardingFileSystem(inner)
    {
        private int _lstats;
        public int Lstats => Volatile.Read(ref _lstats);

        public override int Lstat(ReadOnlySpan<byte> path, out FileStat attributes)
        {
            Interlocked.Increment(ref _lstats);
            return Inner.Lstat(path, out attributes);
        }
    }
}

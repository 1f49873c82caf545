using Microsoft.Extensions.Logging.Abstractions;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Tests.FileSystem;
using VirtFs.Virtio9p.Server;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Issue 13 item 1: what a guest makes the host hold for its session is bounded, a request past a limit
/// answers the errno QEMU would, the session stays usable, and releasing (Tclunk, Tremove, Tversion, an xattr
/// replace) gives the budget back.</summary>
public sealed class SessionBudgetTests : IDisposable
{
    private const uint Root = 0;
    private const int XattrMax = 65536;
    private readonly string _dir;
    private readonly LocalFileSystem _fs;

    public SessionBudgetTests()
    {
        _dir = Directory.CreateTempSubdirectory("p9budget-").FullName;
        _fs = new LocalFileSystem(_dir);
    }

    public void Dispose()
    {
        _fs.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private P9TestClient Client(SessionLimits? limits = null)
    {
        // A small msize: the test exchange allocates a reply buffer of msize per request.
        var client = new P9TestClient(new P9Server(_fs, NullLogger.Instance, limits: limits), msize: 8192);
        client.Handshake(Root);
        return client;
    }

    /// <summary>16 Ki fids each announcing a 64 KiB xattr would pin 1 GiB; with the default budget (16 MiB)
    /// the 257th answers ENOMEM, and every other request still works.</summary>
    [Fact]
    public void Txattrcreate_in_flight_bytes_stay_within_the_default_budget()
    {
        P9TestClient client = Client();
        int accepted = 0, refused = 0;
        for (uint i = 1; i <= 16 * 1024; i++)
        {
            client.Walk(Root, i).Expect(T.Rwalk);
            P9TestClient.Reply reply = client.Call(T.Txattrcreate, b => b.U32(i).Str("user.big").U64(XattrMax).U32(0));
            if (reply.Type == T.Rxattrcreate)
            {
                accepted++;
            }
            else
            {
                Assert.Equal(12, reply.Errno); // ENOMEM
                refused++;
            }
        }
        Assert.Equal(SessionLimits.DefaultMaxXattrBytes / XattrMax, accepted);
        Assert.Equal(16 * 1024 - accepted, refused);
        Assert.True(client.Server.Budget.XattrBytes <= SessionLimits.DefaultMaxXattrBytes);

        // Still usable: a small xattr needs room, so it waits for a clunk; a plain walk does not.
        client.Walk(Root, 100_000).Expect(T.Rwalk);
        Assert.Equal(12, client.Call(T.Txattrcreate, b => b.U32(100_000).Str("user.small").U64(4).U32(0)).Errno);
        client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rlerror); // incomplete value: EINVAL, but the fid is gone
        Assert.Equal(SessionLimits.DefaultMaxXattrBytes - XattrMax, client.Server.Budget.XattrBytes);
        client.Call(T.Txattrcreate, b => b.U32(100_000).Str("user.small").U64(4).U32(0)).Expect(T.Rxattrcreate);
    }

    /// <summary>Txattrwalk values held per fid count too, and go back when the fid is clunked or replaced.</summary>
    [Fact]
    public void Txattrwalk_values_are_charged_and_given_back()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "");
        P9TestClient client = Client(new SessionLimits { MaxXattrBytes = 2500 });
        client.Walk(Root, 1, "f").Expect(T.Rwalk);
        client.Call(T.Txattrcreate, b => b.U32(1).Str("user.v").U64(1000).U32(0)).Expect(T.Rxattrcreate);
        client.Call(T.Twrite, b => b.U32(1).U64(0).U32(1000).Bytes(new byte[1000])).Expect(T.Rwrite);
        client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
        Assert.Equal(0, client.Server.Budget.XattrBytes);

        for (uint i = 2; i <= 4; i++)
        {
            client.Call(T.Txattrwalk, b => b.U32(Root).U32(i).Str("")).Expect(T.Rxattrwalk); // name list, tiny
        }
        client.Walk(Root, 10, "f").Expect(T.Rwalk);
        for (uint i = 11; i <= 13; i++)
        {
            P9TestClient.Reply r = client.Call(T.Txattrwalk, b => b.U32(10).U32(i).Str("user.v"));
            if (i < 13)
            {
                r.Expect(T.Rxattrwalk);
            }
            else
            {
                Assert.Equal(12, r.Errno); // a third value of 1000 bytes: past 2500
                Assert.False(client.Call(T.Tgetattr, b => b.U32(i).U64(0x7ff)).Type == T.Rgetattr); // no fid made
            }
        }
        long held = client.Server.Budget.XattrBytes;
        Assert.InRange(held, 2000, 2500);
        client.Call(T.Tclunk, b => b.U32(12)).Expect(T.Rclunk);
        Assert.Equal(held - 1000, client.Server.Budget.XattrBytes);
        // Replacing a value fid in place (newfid == fid) gives the old value back.
        client.Call(T.Txattrwalk, b => b.U32(11).U32(11).Str("user.v")).Expect(T.Rxattrwalk);
        Assert.Equal(held - 1000, client.Server.Budget.XattrBytes);
        client.Call(T.Tremove, b => b.U32(11)); // Tremove drops the fid whatever it answers
        Assert.Equal(held - 2000, client.Server.Budget.XattrBytes);
        client.Call(T.Tversion, b => b.U32(8192).Str("9P2000.L")).Expect(T.Rversion);
        Assert.Equal(0, client.Server.Budget.XattrBytes);
        Assert.Equal(0, client.Server.Budget.Fids);
        Assert.Equal(0, client.Server.Budget.PathBytes);
    }

    /// <summary>100 000 fids against a limit of 65 536: the rest answer EMFILE, the session keeps working, and a
    /// Tversion gives every fid back.</summary>
    [Fact]
    public void Fids_past_the_limit_answer_EMFILE_and_the_session_stays_usable()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "data");
        P9TestClient client = Client(new SessionLimits { MaxFids = 65_536 });
        int refused = 0;
        for (uint i = 1; i < 100_000; i++)
        {
            P9TestClient.Reply reply = client.Walk(Root, i);
            if (reply.Type == T.Rlerror)
            {
                Assert.Equal(24, reply.Errno); // EMFILE
                refused++;
            }
        }
        Assert.Equal(100_000 - 65_536, refused);
        Assert.Equal(65_536, client.Server.FidCount);
        Assert.Equal(65_536, client.Server.Budget.Fids);

        // Usable: clunk one, and the next walk gets its slot; existing fids still serve requests.
        client.Call(T.Tclunk, b => b.U32(5)).Expect(T.Rclunk);
        client.Walk(Root, 5, "f").Expect(T.Rwalk);
        client.Call(T.Tlopen, b => b.U32(5).U32(0)).Expect(T.Rlopen);
        P9TestClient.Reply read = client.Call(T.Tread, b => b.U32(5).U64(0).U32(100)).Expect(T.Rread);
        Assert.Equal(4u, read.U32());
        Assert.Equal(24, client.Walk(Root, 200_000).Errno);

        client.Call(T.Tversion, b => b.U32(8192).Str("9P2000.L")).Expect(T.Rversion);
        Assert.Equal(0, client.Server.Budget.Fids);
        Assert.Equal(0, client.Server.Budget.OpenFiles);
        Assert.Equal(0, client.Server.Budget.PathBytes);
        client.Call(T.Tattach, b => b.U32(Root).U32(VirtFs.Virtio9p.Protocol.P9Limits.NoFid).Str("root").Str("").U32(0)).Expect(T.Rattach);
        client.Walk(Root, 1, "f").Expect(T.Rwalk);
    }

    /// <summary>The paths fids name count in bytes: long names cannot make up for a fid limit.</summary>
    [Fact]
    public void Fid_path_bytes_past_the_limit_answer_ENOMEM()
    {
        string name = new('n', 200);
        Directory.CreateDirectory(Path.Combine(_dir, name));
        P9TestClient client = Client(new SessionLimits { MaxPathBytes = 10 * 201 + 2 });
        for (uint i = 1; i <= 10; i++)
        {
            client.Walk(Root, i, name).Expect(T.Rwalk); // 201 bytes each, plus the root's 1
        }
        Assert.Equal(12, client.Walk(Root, 11, name).Errno);
        client.Walk(Root, 11).Expect(T.Rwalk); // "/" still fits: 1 byte
        client.Call(T.Tclunk, b => b.U32(3)).Expect(T.Rclunk);
        client.Walk(Root, 12, name).Expect(T.Rwalk);
        Assert.Equal(10 * 201 + 2, client.Server.Budget.PathBytes);
    }

    /// <summary>Attack: many fids below a short name, then a rename of it under a long path. Every fid's path
    /// grows by the difference, which no walk was charged for: 262 144 clones of "/a" renamed under a 16 KB path
    /// made the backend allocate 4 GiB in one request. A rename whose growth the budget cannot hold answers
    /// ENOMEM and leaves the host as it was.</summary>
    [Fact]
    public void A_rename_that_would_grow_the_fids_paths_past_the_budget_answers_ENOMEM()
    {
        string deep = new('d', 200);
        Directory.CreateDirectory(Path.Combine(_dir, "a"));
        Directory.CreateDirectory(Path.Combine(_dir, deep));
        P9TestClient client = Client(new SessionLimits { MaxPathBytes = 10_000 });
        client.Walk(Root, 1, deep).Expect(T.Rwalk);
        for (uint i = 2; i < 102; i++)
        {
            client.Walk(Root, i, "a").Expect(T.Rwalk); // "/a": 2 bytes each
        }
        long before = client.Server.Budget.PathBytes;
        // 100 fids x 201 more bytes each = 20 100 > 10 000.
        Assert.Equal(12, client.Call(T.Trenameat, b => b.U32(Root).Str("a").U32(1).Str("a")).Errno);
        Assert.True(Directory.Exists(Path.Combine(_dir, "a")));
        Assert.False(Directory.Exists(Path.Combine(_dir, deep, "a")));
        Assert.Equal(before, client.Server.Budget.PathBytes);

        // With room for the growth the same rename is done, and the budget follows the fids.
        for (uint i = 22; i < 102; i++)
        {
            client.Call(T.Tclunk, b => b.U32(i)).Expect(T.Rclunk);
        }
        client.Call(T.Trenameat, b => b.U32(Root).Str("a").U32(1).Str("a")).Expect(T.Rrenameat);
        Assert.True(Directory.Exists(Path.Combine(_dir, deep, "a")));
        Assert.True(client.Server.Budget.PathBytes <= 10_000);
        client.Call(T.Tgetattr, b => b.U32(2).U64(0x7ff)).Expect(T.Rgetattr);
    }

    /// <summary>Open host files are bounded (EMFILE, as open(2) at RLIMIT_NOFILE) and given back at clunk.</summary>
    [Fact]
    public void Open_files_past_the_limit_answer_EMFILE_and_clunk_gives_them_back()
    {
        for (int i = 0; i < 40; i++)
        {
            File.WriteAllText(Path.Combine(_dir, $"f{i}"), "");
        }
        P9TestClient client = Client(new SessionLimits { MaxOpenFiles = 32 });
        for (uint i = 0; i < 40; i++)
        {
            client.Walk(Root, 1 + i, $"f{i}").Expect(T.Rwalk);
            P9TestClient.Reply reply = client.Call(T.Tlopen, b => b.U32(1 + i).U32(0));
            if (i < 32)
            {
                reply.Expect(T.Rlopen);
            }
            else
            {
                Assert.Equal(24, reply.Errno);
            }
        }
        Assert.Equal(32, client.Server.Budget.OpenFiles);
        // Tlcreate counts too.
        client.Walk(Root, 100).Expect(T.Rwalk);
        Assert.Equal(24, client.Call(T.Tlcreate, b => b.U32(100).Str("new").U32(2).U32(0x1a4).U32(0)).Errno);
        Assert.False(File.Exists(Path.Combine(_dir, "new")));

        client.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
        client.Call(T.Tlcreate, b => b.U32(100).Str("new").U32(2).U32(0x1a4).U32(0)).Expect(T.Rlcreate);
        client.Call(T.Tremove, b => b.U32(100)).Expect(T.Rremove);
        client.Call(T.Tlopen, b => b.U32(33).U32(0)).Expect(T.Rlopen);
        Assert.Equal(32, client.Server.Budget.OpenFiles);
        client.Call(T.Tversion, b => b.U32(8192).Str("9P2000.L")).Expect(T.Rversion);
        Assert.Equal(0, client.Server.Budget.OpenFiles);
    }

    /// <summary>qid numbers from the overflow range (inodes above 2^48) are bounded per session: ENFILE past the
    /// limit, as QEMU when its remap space runs out; Tversion gives them back.</summary>
    [Fact]
    public void Qid_overflow_entries_past_the_limit_answer_ENFILE()
    {
        for (int i = 0; i < 6; i++)
        {
            File.WriteAllText(Path.Combine(_dir, $"f{i}"), "");
        }
        var server = new P9Server(new HugeInodes(_fs), NullLogger.Instance, limits: new SessionLimits { MaxQidOverflowEntries = 4 });
        var client = new P9TestClient(server, msize: 8192);
        client.Handshake(Root); // the root: one entry
        for (uint i = 0; i < 6; i++)
        {
            P9TestClient.Reply reply = client.Walk(Root, 1 + i, $"f{i}");
            if (i < 3)
            {
                reply.Expect(T.Rwalk);
            }
            else
            {
                Assert.Equal(23, reply.Errno); // ENFILE
            }
        }
        client.Walk(Root, 50, "f0").Expect(T.Rwalk); // a file already numbered keeps its number
        Assert.Equal(4, server.QidOverflowCount);
        client.Call(T.Tversion, b => b.U32(8192).Str("9P2000.L")).Expect(T.Rversion);
        Assert.Equal(0, server.QidOverflowCount);
        client.Call(T.Tattach, b => b.U32(Root).U32(VirtFs.Virtio9p.Protocol.P9Limits.NoFid).Str("root").Str("").U32(0)).Expect(T.Rattach);
        client.Walk(Root, 1, "f5").Expect(T.Rwalk);
    }

    /// <summary>Reports every inode above 2^48, so each file needs an overflow qid number.</summary>
    private sealed class HugeInodes(IFileSystem inner) : ForwardingFileSystem(inner)
    {
        public override int Lstat(ReadOnlySpan<byte> path, out FileStat attributes)
        {
            int result = Inner.Lstat(path, out attributes);
            attributes = attributes with { Inode = attributes.Inode | (1UL << 60) };
            return result;
        }

    }
}

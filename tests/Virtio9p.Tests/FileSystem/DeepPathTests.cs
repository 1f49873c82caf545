using System.Text;
using Microsoft.Win32.SafeHandles;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Tests.Server;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>
/// Paths longer than PATH_MAX below the export (issue 16, posix check deep-path-ops): a guest reaches them with
/// short relative paths (its PATH_MAX bounds those, not the export-relative path), QEMU's server and our helper
/// serve them, so the rootless <see cref="LocalFileSystem"/> must too, in chunks, without giving up confinement.
/// The tree is built and torn down through the API only: the host's own path calls stop at PATH_MAX.
/// </summary>
public sealed class DeepPathTests : IDisposable
{
    private const int ENAMETOOLONG = 36, EINVAL = 22, ENOENT = 2;
    private const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_DIRECTORY = 0x10000;

    private readonly LocalExport _local = new();
    private readonly List<(LocalFileSystem Fs, string Path)> _trees = [];
    private readonly List<LocalFileSystem> _opened = [];

    public void Dispose()
    {
        foreach ((LocalFileSystem fs, string path) in _trees) RemoveTree(fs, path);
        foreach (LocalFileSystem fs in _opened) fs.Dispose();
        _local.Dispose();
    }

    /// <summary>Another view of the export, disposed after the trees made through it are gone.</summary>
    private LocalFileSystem Open(string root, SecurityModel model = SecurityModel.Passthrough)
    {
        var fs = new LocalFileSystem(root, model);
        _opened.Add(fs);
        return fs;
    }

    public static TheoryData<SecurityModel> Models => new() { SecurityModel.Passthrough, SecurityModel.MappedXattr };

    /// <summary>"/dNNN.../dNNN..." of <paramref name="levels"/> names of 200 bytes each (the posix check's shape).</summary>
    private static string Chain(int levels, char tag = 'd') =>
        string.Concat(Enumerable.Range(1, levels).Select(i => "/" + tag + i.ToString("D199", System.Globalization.CultureInfo.InvariantCulture)));

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>mkdir -p through the API; the tree is removed through the API when the test ends.</summary>
    private string MakeChain(LocalFileSystem fs, int levels, char tag = 'd')
    {
        string chain = Chain(levels, tag);
        _trees.Add((fs, chain[..(chain.IndexOf('/', 1) is int i and > 0 ? i : chain.Length)]));
        string at = "";
        foreach (string name in chain.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            at += "/" + name;
            Assert.Equal(0, fs.Mkdir(B(at), 0x1ED /* 0755 */, 0, 0));
        }
        return chain;
    }

    /// <summary>rm -rf through the API (depth first), so nothing deep is left in /tmp.</summary>
    private static void RemoveTree(LocalFileSystem fs, string path)
    {
        if (fs.Lstat(B(path), out FileStat st) < 0) return;
        if ((st.Mode & 0xF000) == 0x4000 && fs.Open(B(path), O_RDONLY | O_DIRECTORY, out SafeFileHandle? dir) == 0)
        {
            List<string> names;
            using (dir)
            {
                names = ListNames(dir!);
            }
            foreach (string name in names) RemoveTree(fs, path + "/" + name);
        }
        fs.Remove(B(path));
    }

    private static List<string> ListNames(SafeFileHandle dir)
    {
        // /proc/self/fd/N is short; the directory behind it can be as deep as it likes.
        string proc = "/proc/self/fd/" + dir.DangerousGetHandle();
        return new DirectoryInfo(proc).EnumerateFileSystemInfos().Select(i => i.Name).ToList();
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Every_operation_works_more_than_PATH_MAX_below_the_export(SecurityModel model)
    {
        var fs = Open(_local.Export, model);
        string d = MakeChain(fs, 45); // 9045 bytes: three chunks
        Assert.True(Encoding.UTF8.GetByteCount(d) > 2 * 4095);

        // walk / getattr of every level, the deepest included
        string at = "";
        foreach (string name in d.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            at += "/" + name;
            Assert.Equal(0, fs.Lstat(B(at), out FileStat level));
            Assert.Equal(0x4000u, level.Mode & 0xF000);
        }

        // create, write, open, read
        Assert.Equal(0, fs.Create(B(d + "/f"), O_RDWR | O_CREAT, 0x1A4 /* 0644 */, 0, 0, out SafeFileHandle? created));
        using (created) RandomAccess.Write(created!, "data"u8, 0);
        Assert.Equal(0, fs.Open(B(d + "/f"), O_RDONLY, out SafeFileHandle? opened));
        byte[] buffer = new byte[16];
        using (opened) Assert.Equal("data", Encoding.ASCII.GetString(buffer, 0, RandomAccess.Read(opened!, buffer, 0)));
        Assert.Equal(0, fs.Lstat(B(d + "/f"), out FileStat f));
        Assert.Equal(4UL, f.Size);
        Assert.Equal(0x81A4u, f.Mode);

        // rename within the deep directory and across depths (a deep name up to the top and back)
        Assert.Equal(0, fs.Rename(B(d + "/f"), B(d + "/g")));
        Assert.Equal(ENOENT, -fs.Lstat(B(d + "/f"), out _));
        Assert.Equal(0, fs.Rename(B(d + "/g"), "/top"u8));
        Assert.Equal(0, fs.Rename("/top"u8, B(d + "/g")));
        Assert.Equal(0, fs.Link(B(d + "/g"), B(d + "/h")));
        Assert.Equal(0, fs.Lstat(B(d + "/g"), out FileStat g));
        Assert.Equal(2UL, g.LinkCount);

        // attributes
        Assert.Equal(0, fs.Chmod(B(d + "/g"), 0x180 /* 0600 */));
        Assert.Equal(0, fs.Truncate(B(d + "/g"), 2));
        Assert.Equal(0, fs.Utime(B(d + "/g"), 1000, 0, 2000, 0));
        Assert.Equal(0, fs.Chown(B(d + "/g"), uint.MaxValue, uint.MaxValue));
        Assert.Equal(0, fs.Lstat(B(d + "/h"), out FileStat h));
        Assert.Equal(0x8180u, h.Mode);
        Assert.Equal(2UL, h.Size);
        Assert.Equal(2000L, h.Modify.Seconds);
        Assert.Equal(0, fs.Statfs(B(d + "/g"), out FileSystemStats statfs));
        Assert.True(statfs.Blocks > 0);

        // xattrs
        Assert.Equal(0, fs.SetXattr(B(d + "/g"), "user.deep"u8, "v1"u8, 0));
        Assert.Equal(2, fs.GetXattr(B(d + "/g"), "user.deep"u8, buffer));
        Assert.Equal("v1", Encoding.ASCII.GetString(buffer, 0, 2));
        byte[] list = new byte[4096];
        int listed = fs.ListXattr(B(d + "/g"), list);
        Assert.True(listed > 0);
        Assert.Contains("user.deep", Encoding.ASCII.GetString(list, 0, listed).Split('\0'));
        Assert.Equal(0, fs.RemoveXattr(B(d + "/g"), "user.deep"u8));

        // unlink
        Assert.Equal(0, fs.Remove(B(d + "/g")));
        Assert.Equal(0, fs.Remove(B(d + "/h")));
        Assert.Equal(ENOENT, -fs.Lstat(B(d + "/g"), out _));

        // mkdir / rmdir, mknod
        Assert.Equal(0, fs.Mkdir(B(d + "/sub"), 0x1C0 /* 0700 */, 0, 0));
        Assert.Equal(0, fs.Lstat(B(d + "/sub"), out FileStat sub));
        Assert.Equal(0x41C0u, sub.Mode);
        Assert.Equal(0, fs.Remove(B(d + "/sub")));
        Assert.Equal(0, fs.Mknod(B(d + "/fifo"), 0x1000 | 0x1A4 /* S_IFIFO|0644 */, 0, 0, 0));
        Assert.Equal(0, fs.Lstat(B(d + "/fifo"), out FileStat fifo));
        Assert.Equal(0x1000u, fifo.Mode & 0xF000);
        Assert.Equal(0, fs.Remove(B(d + "/fifo")));

        // symlink / readlink (a relative target one level up stays inside the chunk the link sits in)
        Assert.Equal(0, fs.Symlink("../target"u8, B(d + "/link"), 0, 0));
        int n = fs.Readlink(B(d + "/link"), buffer);
        Assert.Equal("../target", Encoding.ASCII.GetString(buffer, 0, n));
        Assert.Equal(0, fs.Lstat(B(d + "/link"), out FileStat link));
        Assert.Equal(0xA000u, link.Mode & 0xF000);
        Assert.Equal(0, fs.Remove(B(d + "/link")));

        // the deep directory itself can be opened (readdir) and removed
        Assert.Equal(0, fs.Open(B(d), O_RDONLY | O_DIRECTORY, out SafeFileHandle? dir));
        using (dir) Assert.Empty(ListNames(dir!));
        Assert.Equal(0, fs.Remove(B(d)));
        Assert.Equal(ENOENT, -fs.Lstat(B(d), out _));
    }

    [Fact]
    public void A_component_starting_exactly_at_a_chunk_boundary_resolves()
    {
        // Names of every length from 1 to 255 around the 4095-byte mark, so the cut lands before, on and after
        // a '/' at every offset near the limit.
        var fs = _local.FileSystem;
        string prefix = MakeChain(fs, 20); // 4020 bytes
        for (int len = 60; len <= 90; len++)
        {
            string dir = prefix + "/" + new string('x', len);
            Assert.Equal(0, fs.Mkdir(B(dir), 0x1ED, 0, 0));
            string deep = dir + "/" + new string('y', 255);
            Assert.Equal(0, fs.Mkdir(B(deep), 0x1ED, 0, 0));
            Assert.Equal(0, fs.Create(B(deep + "/f"), O_RDWR | O_CREAT, 0x1A4, 0, 0, out SafeFileHandle? h));
            h!.Dispose();
            Assert.Equal(0, fs.Lstat(B(deep + "/f"), out _));
            Assert.Equal(0, fs.Remove(B(deep + "/f")));
            Assert.Equal(0, fs.Remove(B(deep)));
            Assert.Equal(0, fs.Remove(B(dir)));
        }
    }

    [Fact]
    public void Paths_beyond_the_hard_cap_and_components_beyond_NAME_MAX_answer_ENAMETOOLONG()
    {
        var fs = _local.FileSystem;
        // 16383 bytes is the cap (the helper mode's, ProxyLimits.MaxPathLength); one byte more is refused before
        // anything is resolved.
        string atCap = Chain(82)[..16383];
        Assert.Equal(ENOENT, -fs.Lstat(B(atCap), out _));
        Assert.Equal(ENAMETOOLONG, -fs.Lstat(B(atCap + "z"), out _));
        Assert.Equal(ENAMETOOLONG, -fs.Mkdir(B(atCap + "z"), 0x1ED, 0, 0));
        Assert.Equal(ENAMETOOLONG, -fs.Rename(B(atCap + "z"), "/x"u8));
        // A component longer than NAME_MAX: nothing to cut, whatever its place.
        string longName = new string('n', 300);
        Assert.Equal(ENAMETOOLONG, -fs.Lstat(B(Chain(25) + "/" + longName + "/f"), out _));
        Assert.Equal(ENAMETOOLONG, -fs.Lstat(B(Chain(25) + "/" + longName), out _));
    }

    /// <summary>The server's paths never hold "." or ".." (<c>PathNames.Check</c>); a long one that does is refused
    /// rather than resolved, since a chunk starting with ".." could only be refused by RESOLVE_BENEATH anyway and
    /// a lexical clean-up would be wrong through a symlink.</summary>
    [Fact]
    public void Dot_and_dotdot_components_in_a_long_path_are_EINVAL()
    {
        var fs = _local.FileSystem;
        string d = MakeChain(fs, 25);
        Assert.Equal(EINVAL, -fs.Lstat(B(d + "/../" + Chain(1)[1..]), out _));
        Assert.Equal(EINVAL, -fs.Lstat(B(d + "/./x"), out _));
        Assert.Equal(EINVAL, -fs.Lstat(B("/.." + d), out _));
        // Short paths keep their RESOLVE_IN_ROOT clamping (LocalFileSystemTests.DotDotInTheMiddle_IsClampedAtTheRoot).
        Assert.Equal(0, fs.Lstat(B("/.." + Chain(1)), out _));
    }

    /// <summary>Symlinks inside a deep path, made on the host where the guest cannot: absolute, climbing out of the
    /// export with exactly enough "..", and to "/", placed in the first chunk and in a later one, each with the
    /// file it aims at really there outside. None reaches it.</summary>
    [Fact]
    public void Symlinks_in_a_deep_path_never_lead_outside()
    {
        var fs = _local.FileSystem;
        using var whole = new LocalFileSystem(_local.Root);
        string d = MakeChain(fs, 25); // 5025 bytes
        string first = Chain(1);      // "/d1": the link replaces d2, in the first chunk; the rest of the chain is mirrored outside
        string rest = d[(2 * 201)..]; // "/d3.../d25"
        MakeChainUnder(whole, "/outside", rest);
        Assert.Equal(0, whole.Create(B("/outside" + rest + "/secret"), O_RDWR | O_CREAT, 0x1A4, 0, 0, out SafeFileHandle? s1));
        using (s1) RandomAccess.Write(s1!, "S"u8, 0);
        File.WriteAllText(Path.Combine(_local.Outside, "secret"), "S");
        try
        {
            foreach ((string where, int depth, string tail) in new[] { (first, 1, rest + "/secret"), (d, 25, "/secret") })
            {
                string climb = string.Concat(Enumerable.Repeat("../", depth + 1)) + "outside";
                foreach (string target in new[] { _local.Outside, climb, "/" })
                {
                    File.CreateSymbolicLink(Path.Combine(_local.Root, "link"), target);
                    Assert.Equal(0, whole.Rename("/link"u8, B("/export" + where + "/l")));
                    byte[] through = B(where + "/l" + tail);
                    Assert.True(through.Length > 4095);
                    int r = fs.Open(through, O_RDONLY, out SafeFileHandle? fd);
                    fd?.Dispose();
                    Assert.True(r < 0, $"opened through a link to {target} at depth {depth}");
                    Assert.True(fs.Lstat(through, out _) < 0, $"stat'ed through a link to {target} at depth {depth}");
                    Assert.True(fs.SetXattr(through, "user.mark"u8, "x"u8, 0) < 0);
                    Assert.Equal(0, fs.Remove(B(where + "/l")));
                }
            }
        }
        finally
        {
            RemoveTree(whole, "/outside" + rest[..rest.IndexOf('/', 1)]);
        }
        Assert.Equal("S", File.ReadAllText(Path.Combine(_local.Outside, "secret")));
    }

    private static void MakeChainUnder(LocalFileSystem fs, string under, string chain)
    {
        string at = under;
        foreach (string name in chain.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            at += "/" + name;
            Assert.Equal(0, fs.Mkdir(B(at), 0x1ED, 0, 0));
        }
    }

    /// <summary>A directory in the middle of a deep path swapped for a symlink to the outside while requests run:
    /// the chunk fds pin real directories, later chunks resolve beneath them, so nothing outside is ever reached.</summary>
    [Fact]
    public async Task A_deep_directory_swapped_for_a_symlink_never_leads_outside()
    {
        var fs = _local.FileSystem;
        using var whole = new LocalFileSystem(_local.Root);
        string d = MakeChain(fs, 25);
        Assert.Equal(0, fs.Create(B(d + "/secret"), O_RDWR | O_CREAT, 0x1A4, 0, 0, out SafeFileHandle? mine));
        using (mine) RandomAccess.Write(mine!, "I"u8, 0);
        // The 21st level is the first name of the second chunk (the first cut falls after level 20: 20 * 201 - 1
        // <= 4095 < 21 * 201 - 1): swap it for a symlink to the outside, where levels 22..25 and a secret wait.
        string[] names = d.Split('/', StringSplitOptions.RemoveEmptyEntries);
        string swapped = string.Concat(names.Take(21).Select(n => "/" + n));
        string mirror = "/outside" + string.Concat(names.Skip(21).Select(n => "/" + n));
        MakeChainUnder(whole, "/outside", mirror["/outside".Length..]);
        Assert.Equal(0, whole.Create(B(mirror + "/secret"), O_RDWR | O_CREAT, 0x1A4, 0, 0, out SafeFileHandle? theirs));
        using (theirs) RandomAccess.Write(theirs!, "S"u8, 0);
        Assert.Equal(0, whole.Lstat(B(mirror + "/secret"), out FileStat before));
        byte[] real = B("/export" + swapped), parked = B("/export" + swapped + ".real");
        string outsideLink = Path.Combine(_local.Root, "evil");
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        int swaps = 0, opened = 0;
        var swapper = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                Assert.Equal(0, whole.Rename(real, parked));
                File.CreateSymbolicLink(outsideLink, _local.Outside);
                Assert.Equal(0, whole.Rename("/evil"u8, real));
                Thread.Yield();
                Assert.Equal(0, whole.Remove(real));
                Assert.Equal(0, whole.Rename(parked, real));
                Interlocked.Increment(ref swaps);
                Thread.Yield();
                if (Volatile.Read(ref opened) >= 20 && Volatile.Read(ref swaps) >= 200) stop.Cancel();
            }
        });
        byte[] buffer = new byte[8];
        byte[] secret = B(d + "/secret");
        while (!swapper.IsCompleted)
        {
            if (fs.Open(secret, O_RDONLY, out SafeFileHandle? fd) == 0)
            {
                using (fd)
                {
                    Assert.Equal("I", Encoding.ASCII.GetString(buffer, 0, RandomAccess.Read(fd!, buffer, 0)));
                    Interlocked.Increment(ref opened);
                }
            }
            fs.Chmod(secret, 0x1FF);
            fs.SetXattr(secret, "user.mark"u8, "x"u8, 0);
        }
        await swapper;
        Assert.True(swaps > 10 && opened > 0, $"swaps {swaps}, opened {opened}");
        Assert.Equal(0, whole.Lstat(B(mirror + "/secret"), out FileStat after));
        Assert.Equal(before.Mode, after.Mode);
        Assert.Equal(-61 /* ENODATA */, whole.GetXattr(B(mirror + "/secret"), "user.mark"u8, new byte[8]));
        RemoveTree(whole, "/outside/" + names[21]);
    }

    /// <summary>The same through the 9P server, as the guest drives it: one name per Twalk, Tgetattr, Tmkdir,
    /// Tlcreate, Tread, Trenameat, Tunlinkat.</summary>
    [Fact]
    public void The_server_walks_creates_and_removes_more_than_PATH_MAX_deep()
    {
        var client = new P9TestClient(_local.FileSystem);
        client.Handshake(0);
        client.Walk(0, 1).Expect(T.Rwalk);
        for (int i = 1; i <= 25; i++)
        {
            string name = "d" + i.ToString("D199", System.Globalization.CultureInfo.InvariantCulture);
            client.Call(T.Tmkdir, b => b.U32(1).Str(name).U32(0x1ED).U32(0)).Expect(T.Rmkdir);
            client.Walk(1, 1, name).Expect(T.Rwalk);
            client.Call(T.Tgetattr, b => b.U32(1).U64(0x7ff)).Expect(T.Rgetattr);
        }
        _trees.Add((_local.FileSystem, Chain(1)));
        client.Walk(1, 2).Expect(T.Rwalk);
        client.Call(T.Tlcreate, b => b.U32(2).Str("f").U32(2 /* O_RDWR */).U32(0x1A4).U32(0)).Expect(T.Rlcreate);
        client.Call(T.Twrite, b => b.U32(2).U64(0).U32(4).Bytes("data"u8.ToArray())).Expect(T.Rwrite);
        client.Call(T.Tclunk, b => b.U32(2)).Expect(T.Rclunk);
        client.Walk(1, 3, "f").Expect(T.Rwalk);
        client.Call(T.Tlopen, b => b.U32(3).U32(0)).Expect(T.Rlopen);
        var read = client.Call(T.Tread, b => b.U32(3).U64(0).U32(100)).Expect(T.Rread);
        Assert.Equal("data", Encoding.ASCII.GetString(read.Take((int)read.U32())));
        client.Call(T.Tclunk, b => b.U32(3)).Expect(T.Rclunk);
        client.Call(T.Trenameat, b => b.U32(1).Str("f").U32(1).Str("g")).Expect(T.Rrenameat);
        client.Walk(1, 4, "g").Expect(T.Rwalk);
        client.Call(T.Tunlinkat, b => b.U32(1).Str("g").U32(0)).Expect(T.Runlinkat);
        Assert.Equal(ENOENT, client.Walk(1, 5, "g").Errno);
    }
}

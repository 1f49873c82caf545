using System.Text;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.ProxyFs;
using VirtFs.ProxyFs.Protocol;

namespace VirtFs.Helper.Tests;

/// <summary>Component tests: the real helper as root in a temporary export, driven by ProxyClient.</summary>
public sealed class HelperTests : IDisposable
{
    private readonly HelperProcess _helper = HelperProcess.StartNamed();

    public void Dispose() => _helper.Dispose();

    private string Host(string rel) => Path.Combine(_helper.Export, rel);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Create_write_through_fd_and_read_back_on_host_with_requester_ownership()
    {
        using var c = _helper.Connect();
        Assert.Equal(0, c.Create("/file"u8, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_EXCL, 0x1A0 /* 0640 */, 1000, 1000, out var fd));
        Assert.NotNull(fd);
        using (var fs = new FileStream(fd!, FileAccess.Write)) fs.Write("hello proxy"u8);
        Assert.Equal("hello proxy", File.ReadAllText(Host("file")));
        var (uid, gid, mode) = HostStat.Of(Host("file"));
        Assert.Equal((1000u, 1000u, 0x8000u | 0x1A0 /* 0640 */), (uid, gid, mode));

        Assert.Equal(0, c.Open("file"u8, LibC.O_RDONLY, out var rfd));
        using (var fs = new FileStream(rfd!, FileAccess.Read))
        {
            var buf = new byte[64];
            int n = fs.Read(buf);
            Assert.Equal("hello proxy", Encoding.UTF8.GetString(buf, 0, n));
        }
        Assert.Equal(-17, c.Create("/file"u8, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_EXCL, 0x1A0 /* 0640 */, 1000, 1000, out var none)); // EEXIST
        Assert.Null(none);
        Assert.Equal(-2, c.Open("/missing"u8, LibC.O_RDONLY, out _));
    }

    [Fact]
    public void Every_metadata_call_works()
    {
        using var c = _helper.Connect();
        Assert.Equal(0, c.Mkdir("/d"u8, 0x1ED /* 0755 */, 1000, 1001));
        Assert.Equal((1000u, 1001u), (HostStat.Of(Host("d")).Uid, HostStat.Of(Host("d")).Gid));
        File.WriteAllText(Host("d/f"), "0123456789");

        Assert.Equal(0, c.Lstat("/d/f"u8, out var st));
        Assert.Equal(10UL, st.Size);
        Assert.Equal(0x8000u, st.Mode & 0xF000);
        Assert.Equal(1UL, st.Nlink);

        Assert.Equal(0, c.Link("/d/f"u8, "/d/g"u8));
        Assert.Equal(0, c.Lstat("/d/f"u8, out st));
        Assert.Equal(2UL, st.Nlink);

        Assert.Equal(0, c.Symlink("f"u8, "/d/s"u8, 1000, 1000));
        Assert.Equal((1000u, 1000u), (HostStat.Of(Host("d/s")).Uid, HostStat.Of(Host("d/s")).Gid));
        var buf = new byte[256];
        int n = c.Readlink("/d/s"u8, buf);
        Assert.Equal("f", Encoding.UTF8.GetString(buf, 0, n));
        Assert.Equal(0, c.Lstat("/d/s"u8, out st));
        Assert.Equal(0xA000u, st.Mode & 0xF000);

        Assert.Equal(0, c.Chmod("/d/f"u8, 0x180 /* 0600 */));
        Assert.Equal(0x8000u | 0x180 /* 0600 */, HostStat.Of(Host("d/f")).Mode);
        Assert.Equal(0, c.Chown("/d/f"u8, 1234, uint.MaxValue));
        Assert.Equal(1234u, HostStat.Of(Host("d/f")).Uid);
        Assert.Equal(0, c.Chown("/d/s"u8, 4321, 4321)); // lchown: the link, not its target
        Assert.Equal(4321u, HostStat.Of(Host("d/s")).Uid);
        Assert.Equal(1234u, HostStat.Of(Host("d/f")).Uid);

        Assert.Equal(0, c.Truncate("/d/f"u8, 3));
        Assert.Equal(3, new FileInfo(Host("d/f")).Length);

        Assert.Equal(0, c.Utime("/d/f"u8, 1_000_000, 5, 2_000_000, 7));
        Assert.Equal(0, c.Lstat("/d/f"u8, out st));
        Assert.Equal((1_000_000UL, 5UL, 2_000_000UL, 7UL), (st.AtimeSec, st.AtimeNsec, st.MtimeSec, st.MtimeNsec));
        Assert.Equal(0, c.Utime("/d/f"u8, 0, LibC.UTIME_OMIT, 0, LibC.UTIME_NOW));

        Assert.Equal(0, c.Rename("/d/f"u8, "/d/h"u8));
        Assert.True(File.Exists(Host("d/h")));

        Assert.Equal(0, c.Statfs("/"u8, out var sfs));
        Assert.True(sfs.Bsize > 0);
        Assert.True(sfs.Namelen > 0);

        Assert.Equal(0, c.GetVersion("/d/h"u8, out _));

        Assert.Equal(-39, c.Remove("/d"u8)); // ENOTEMPTY
        Assert.Equal(0, c.Remove("/d/h"u8));
        Assert.Equal(0, c.Remove("/d/g"u8));
        Assert.Equal(0, c.Remove("/d/s"u8));
        Assert.Equal(0, c.Remove("/d"u8));
        Assert.False(Directory.Exists(Host("d")));

        Assert.Equal(0, c.Mknod("/fifo"u8, 0x1000 | 0x1A4 /* 0644 */, 0, 1000, 1000));
        Assert.Equal(0x1000u, HostStat.Of(Host("fifo")).Mode & 0xF000);
        Assert.Equal(1000u, HostStat.Of(Host("fifo")).Uid);
        Assert.False(c.IsBroken);
    }

    [Fact]
    public void Xattrs_round_trip()
    {
        using var c = _helper.Connect();
        File.WriteAllText(Host("x"), "");
        int r = c.SetXattr("/x"u8, "user.test"u8, "value-1"u8, 0);
        if (r == -95) return; // EOPNOTSUPP: the temp filesystem has no user xattrs
        Assert.Equal(0, r);
        Assert.Equal(7, c.GetXattr("/x"u8, "user.test"u8, Span<byte>.Empty));
        var v = new byte[64];
        Assert.Equal(7, c.GetXattr("/x"u8, "user.test"u8, v));
        Assert.Equal("value-1", Encoding.UTF8.GetString(v, 0, 7));
        Assert.Equal(-34, c.GetXattr("/x"u8, "user.test"u8, v.AsSpan(0, 3))); // ERANGE
        int size = c.ListXattr("/x"u8, Span<byte>.Empty);
        Assert.True(size >= 10);
        var list = new byte[size];
        Assert.Equal(size, c.ListXattr("/x"u8, list));
        Assert.Contains("user.test", Encoding.UTF8.GetString(list));
        Assert.Equal(0, c.RemoveXattr("/x"u8, "user.test"u8));
        Assert.Equal(-61, c.GetXattr("/x"u8, "user.test"u8, v)); // ENODATA
    }

    [Fact]
    public void Paths_cannot_escape_the_export()
    {
        using var c = _helper.Connect();
        string outside = Path.Combine(_helper.Root, "outside");
        File.WriteAllText(outside, "secret");
        Directory.CreateSymbolicLink(Host("etc"), "/etc");
        File.CreateSymbolicLink(Host("up"), "../outside");
        Directory.CreateSymbolicLink(Host("root"), "/");

        Assert.Equal(-2, c.Lstat("/../outside"u8, out _));
        Assert.Equal(-2, c.Lstat("../../outside"u8, out _));
        // "/etc" inside the chroot is the link itself: it resolves to itself (ELOOP), never to the host's /etc.
        Assert.Equal(-40, c.Open("/etc/passwd"u8, LibC.O_RDONLY, out _));
        Assert.Equal(-2, c.Open("/up"u8, LibC.O_RDONLY, out _));
        Assert.Equal(-2, c.Lstat("/root/outside"u8, out _));
        Assert.Equal(-2, c.Open(Encoding.UTF8.GetBytes(outside), LibC.O_RDONLY, out _));

        // The link itself is what lstat and lchown see.
        Assert.Equal(0, c.Lstat("/up"u8, out var st));
        Assert.Equal(0xA000u, st.Mode & 0xF000);
        Assert.Equal(0, c.Chown("/up"u8, 1000, 1000));
        Assert.Equal(0u, HostStat.Of(outside).Uid);

        // Creating through ".." lands inside the export.
        Assert.Equal(0, c.Mkdir("/../../made"u8, 0x1ED /* 0755 */, 0, 0));
        Assert.True(Directory.Exists(Host("made")));
        Assert.False(Directory.Exists(Path.Combine(_helper.Root, "made")));
        // "/etc" is the planted link to the host's /etc; inside the chroot it names nothing.
        Assert.Equal(-40, c.Create("/etc/new"u8, LibC.O_CREAT | LibC.O_WRONLY, 0x1A4 /* 0644 */, 0, 0, out _));
        Assert.False(File.Exists("/etc/new"));
    }

    [Fact]
    public void Special_files_are_never_opened()
    {
        using var c = _helper.Connect();
        Assert.Equal(0, Mkfifo(Host("fifo")));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(-Errno.ENXIO, c.Open("/fifo"u8, LibC.O_RDONLY, out var fd));
        Assert.Null(fd);
        Assert.Equal(-Errno.ENXIO, c.Open("/fifo"u8, LibC.O_WRONLY | LibC.O_NONBLOCK, out _));
        Assert.Equal(-Errno.ENXIO, c.Create("/fifo"u8, LibC.O_RDONLY | LibC.O_CREAT, 0x1A4 /* 0644 */, 0, 0, out _));
        File.CreateSymbolicLink(Host("fifolink"), "fifo");
        Assert.Equal(-Errno.ENXIO, c.Open("/fifolink"u8, LibC.O_RDONLY, out _));

        // A device node made by a root requester (CAP_MKNOD) is refused too: /dev/null is char 1:3.
        Assert.Equal(0, c.Mknod("/null"u8, 0x2000 | 0x1B6 /* 0666 */, (1UL << 8) | 3, 0, 0));
        Assert.Equal(-Errno.ENXIO, c.Open("/null"u8, LibC.O_RDWR, out _));
        // A non-root requester cannot make one at all.
        Assert.Equal(-1, c.Mknod("/null2"u8, 0x2000 | 0x1B6 /* 0666 */, (1UL << 8) | 3, 1000, 1000)); // EPERM
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10));
        // Directories still open (backend reads directories through the fd).
        Assert.Equal(0, c.Open("/"u8, LibC.O_RDONLY | LibC.O_DIRECTORY, out var dfd));
        dfd!.Dispose();
    }

    private static unsafe int Mkfifo(string path)
    {
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* pp = p) return LibC.mknod(pp, (mode_t)(ushort)(0x1000 | 0x1A4 /* 0644 */), 0);
    }

    [Fact]
    public void Open_with_O_CREAT_is_refused()
    {
        using var c = _helper.Connect();
        Assert.Equal(-22, c.Open("/new"u8, LibC.O_CREAT | LibC.O_WRONLY, out _));
        Assert.False(File.Exists(Host("new")));
    }

    [Fact]
    public void Only_seven_capabilities_and_no_new_privs()
    {
        string status = File.ReadAllText($"/proc/{_helper.Process.Id}/status");
        string Field(string name) => status.Split('\n').First(l => l.StartsWith(name + ":")).Split('\t', 2)[1].Trim();
        const string seven = "00000000080000db"; // CHOWN DAC_OVERRIDE FOWNER FSETID SETGID SETUID MKNOD
        Assert.Equal(seven, Field("CapPrm"));
        Assert.Equal(seven, Field("CapEff"));
        Assert.Equal(seven, Field("CapBnd"));
        Assert.Equal("0000000000000000", Field("CapInh"));
        Assert.Equal("0000000000000000", Field("CapAmb"));
        Assert.Equal("1", Field("NoNewPrivs"));
        // The connection threads too.
        using var c = _helper.Connect();
        Assert.Equal(0, c.Lstat("/"u8, out _));
        foreach (string task in Directory.GetDirectories($"/proc/{_helper.Process.Id}/task"))
        {
            string ts = File.ReadAllText(Path.Combine(task, "status"));
            string name = ts.Split('\n')[0];
            if (name.Contains("connection")) Assert.Contains("CapEff:\t" + seven, ts);
        }
        // The root is the export, as a detached copy of its mount ("/" to /proc: it is attached nowhere).
        Assert.Equal("/", new FileInfo($"/proc/{_helper.Process.Id}/root").LinkTarget);
        Assert.Equal(Inode(_helper.Export), Inode($"/proc/{_helper.Process.Id}/root/"));
    }

    [Fact]
    public unsafe void The_root_is_mounted_nosuid_nodev_noexec()
    {
        const ulong ST_NOSUID = 2, ST_NODEV = 4, ST_NOEXEC = 8;
        statvfs sv;
        fixed (byte* p = Encoding.UTF8.GetBytes($"/proc/{_helper.Process.Id}/root/\0"))
        {
            Assert.Equal(0, LibC.statvfs(p, &sv));
        }
        Assert.Equal(ST_NOSUID | ST_NODEV | ST_NOEXEC, (ulong)sv.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC));
        // ...and the host's own mount of the export is left as it was.
        fixed (byte* p = Encoding.UTF8.GetBytes(_helper.Export + "\0"))
        {
            Assert.Equal(0, LibC.statvfs(p, &sv));
        }
        Assert.Equal(0UL, (ulong)sv.f_flag & ST_NOSUID);
    }

    private static unsafe (ulong Dev, ulong Ino) Inode(string path)
    {
        stat st;
        fixed (byte* p = Encoding.UTF8.GetBytes(path + "\0"))
        {
            Assert.Equal(0, LibC.stat(p, &st));
        }
        return ((ulong)st.st_dev, (ulong)st.st_ino);
    }

    [Fact]
    public void Malformed_requests_close_only_their_connection()
    {
        using var good = _helper.Connect();
        Assert.Equal(0, good.Lstat("/"u8, out _));

        SendRaw(Header(ProxyRequestType.Lstat, ProxyLimits.MaxBodySize + 1));          // oversized
        SendRaw(Header((ProxyRequestType)99, 4).Concat(new byte[4]).ToArray());        // unknown type
        SendRaw(Header(ProxyRequestType.Lstat, 8).Concat(new byte[] { 1, 0, (byte)'/', 0, 0, 0, 0, 0 }).ToArray()); // trailing bytes
        SendRaw(Header(ProxyRequestType.Lstat, 6).Concat(new byte[] { 200, 0, 1, 2, 3, 4 }).ToArray());  // string longer than message
        SendRaw(Header(ProxyRequestType.Mkdir, 4).Concat(new byte[] { 0, 0, 0, 0 }).ToArray());  // body shorter than format

        Assert.False(Directory.Exists(Host("x")));
        Assert.Equal(0, good.Lstat("/"u8, out _));
        _helper.WaitForStderr("unknown request type 99", TimeSpan.FromSeconds(30));
        Assert.Contains("protocol violation", _helper.Stderr);
        Assert.Contains("exceeds PROXY_MAX_IO_SZ", _helper.Stderr);
        Assert.Contains("unknown request type 99", _helper.Stderr);
        using var fresh = _helper.Connect();
        Assert.Equal(0, fresh.Mkdir("/after"u8, 0x1ED /* 0755 */, 0, 0));
    }

    private static byte[] Header(ProxyRequestType type, int size) => HelperProcess.Header(type, size);

    private void SendRaw(byte[] bytes) => _helper.SendRawExpectingClose(bytes);

    [Fact]
    public void Pool_runs_requests_in_parallel_connections()
    {
        using var pool = new ProxyClientPool(() => _helper.Connect(), 4);
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            using var lease = pool.Rent();
            Assert.Equal(0, lease.Client.Mkdir(Encoding.UTF8.GetBytes($"/p{i}"), 0x1ED /* 0755 */, 1000, 1000));
            Assert.Equal(0, lease.Client.Lstat(Encoding.UTF8.GetBytes($"/p{i}"), out var st));
            Assert.Equal(1000u, st.Uid);
        });
        Assert.Equal(64, Directory.GetDirectories(_helper.Export, "p*").Length);
    }

    [Fact]
    public void Broken_client_is_replaced_by_the_pool()
    {
        int connects = 0;
        using var pool = new ProxyClientPool(() => { connects++; return _helper.Connect(); }, 1);
        using (var lease = pool.Rent())
        {
            lease.Client.Dispose(); // simulate a broken connection
            Assert.True(lease.Client.IsBroken);
        }
        using (var lease = pool.Rent()) Assert.Equal(0, lease.Client.Lstat("/"u8, out _));
        Assert.Equal(2, connects);
    }

    [Fact]
    public void Paths_longer_than_PATH_MAX_work()
    {
        // A guest can build a directory deeper than the kernel's PATH_MAX (4095) allows as one path; the
        // helper enters such paths in chunks. 30 levels of 200 bytes: about 6000 bytes.
        using var c = _helper.Connect();
        string dir = "";
        for (int i = 0; i < 30; i++)
        {
            dir += "/" + new string((char)('a' + i % 26), 200);
            Assert.Equal(0, c.Mkdir(B(dir), 0x1ED /* 0755 */, 1000, 1000));
        }
        byte[] file = B(dir + "/f"), other = B(dir + "/g"), link = B(dir + "/s");
        Assert.True(file.Length > 6000);

        Assert.Equal(0, c.Create(file, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_EXCL, 0x1A4 /* 0644 */, 1000, 1000, out var fd));
        using (var fs = new FileStream(fd!, FileAccess.Write)) fs.Write("deep"u8);
        Assert.Equal(0, c.Lstat(file, out var st));
        Assert.Equal((4UL, 1000u), (st.Size, st.Uid));
        Assert.Equal(0, c.Open(file, LibC.O_RDONLY, out var rfd));
        using (var fs = new FileStream(rfd!, FileAccess.Read))
        {
            var buf = new byte[16];
            Assert.Equal("deep", Encoding.UTF8.GetString(buf, 0, fs.Read(buf)));
        }
        Assert.Equal(0, c.Chmod(file, 0x180 /* 0600 */));
        Assert.Equal(0, c.Chown(file, 1234, uint.MaxValue));
        Assert.Equal(0, c.Truncate(file, 2));
        Assert.Equal(0, c.Utime(file, 1_000_000, 0, 2_000_000, 0));
        Assert.Equal(0, c.Lstat(file, out st));
        Assert.Equal((0x8000u | 0x180, 1234u, 2UL, 2_000_000UL), (st.Mode, st.Uid, st.Size, st.MtimeSec));

        Assert.Equal(0, c.Symlink("f"u8, link, 1000, 1000));
        var target = new byte[16];
        Assert.Equal(1, c.Readlink(link, target));
        int r = c.SetXattr(file, "user.deep"u8, "yes"u8, 0);
        if (r != -95) // EOPNOTSUPP: no user xattrs on the temp filesystem
        {
            Assert.Equal(0, r);
            Assert.Equal(3, c.GetXattr(file, "user.deep"u8, new byte[8]));
            Assert.True(c.ListXattr(file, Span<byte>.Empty) > 0);
            Assert.Equal(0, c.RemoveXattr(file, "user.deep"u8));
        }
        Assert.Equal(0, c.Statfs(file, out _));
        Assert.Equal(0, c.GetVersion(file, out _));

        // Two long paths, and a long and a short one, in one request.
        Assert.Equal(0, c.Link(file, other));
        Assert.Equal(0, c.Rename(other, "/top"u8));
        Assert.Equal(0, c.Rename("/top"u8, other));
        Assert.Equal(0, c.Lstat(file, out st));
        Assert.Equal(2UL, st.Nlink);

        // A short relative path after long ones still resolves from the export root.
        File.WriteAllText(Host("short"), "x");
        Assert.Equal(0, c.Lstat("short"u8, out _));

        Assert.Equal(0, c.Remove(other));
        Assert.Equal(0, c.Remove(link));
        Assert.Equal(0, c.Remove(file));
        Assert.Equal(-2, c.Lstat(file, out _));
        Assert.Equal(-36, c.Lstat(B(dir + "/" + new string('z', 5000)), out _)); // one component over any limit
        Assert.False(c.IsBroken);
    }

    [Fact]
    public void Client_rejects_bad_paths_without_sending()
    {
        using var c = _helper.Connect();
        Assert.Equal(-22, c.Lstat("a\0b"u8, out _));
        Assert.Equal(-36, c.Lstat(Enumerable.Repeat((byte)'a', ProxyLimits.MaxPathLength + 1).ToArray(), out _));
        Assert.Equal(0, c.Lstat("/"u8, out _));
    }
}

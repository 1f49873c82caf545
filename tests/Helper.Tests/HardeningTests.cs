using System.Diagnostics;
using System.Text;
using Tmds.Linux;
using VirtFs.ProxyFs;
using static VirtFs.ProxyFs.Protocol.Errno;

namespace VirtFs.Helper.Tests;

/// <summary>Attacks and kernel-semantics checks against the real helper.</summary>
public sealed class HardeningTests : IDisposable
{
    private readonly HelperProcess _helper = HelperProcess.StartNamed();

    public void Dispose() => _helper.Dispose();

    private string Host(string rel) => Path.Combine(_helper.Export, rel);

    [Fact]
    public void Directory_swapped_for_symlink_between_requests_stays_inside()
    {
        using var c = _helper.Connect();
        Assert.Equal(0, c.Mkdir("/d"u8, 0x1ED /* 0755 */, 0, 0));
        Assert.Equal(0, c.Lstat("/d"u8, out _));
        // Between two requests the directory becomes a link to the host root.
        Directory.Delete(Host("d"));
        Directory.CreateSymbolicLink(Host("d"), "/");
        Assert.Equal(0, c.Create("/d/planted"u8, LibC.O_CREAT | LibC.O_WRONLY, 0x1A4 /* 0644 */, 0, 0, out var fd));
        fd!.Dispose();
        Assert.True(File.Exists(Host("planted")));
        Assert.False(File.Exists("/planted"));
        Assert.Equal(0, c.Lstat("/d"u8, out var st));
        Assert.Equal(0xA000u, st.Mode & 0xF000);
    }

    [Fact]
    public void Setgid_bit_is_cleared_as_the_kernel_would_for_the_requester()
    {
        using var c = _helper.Connect();
        Directory.CreateDirectory(Host("sg"));
        unsafe
        {
            byte[] p = Encoding.UTF8.GetBytes(Host("sg") + "\0");
            fixed (byte* pp = p)
            {
                Assert.Equal(0, LibC.chown(pp, 0, 2000));
                Assert.Equal(0, LibC.chmod(pp, (mode_t)(ushort)0x5FF)); // 02777
            }
        }
        // A requester outside group 2000 without CAP_FSETID: the kernel strips S_ISGID from the new file.
        Assert.Equal(0, c.Create("/sg/user"u8, LibC.O_CREAT | LibC.O_WRONLY, 0x400 | 0x1ED /* 0755 */, 1000, 1000, out var fd));
        fd!.Dispose();
        var user = HostStat.Of(Host("sg/user"));
        Assert.Equal((1000u, 2000u), (user.Uid, user.Gid)); // gid inherited from the setgid directory
        Assert.Equal(0u, user.Mode & 0x400);
        // Root keeps it (CAP_FSETID effective for a 0:0 requester).
        Assert.Equal(0, c.Create("/sg/root"u8, LibC.O_CREAT | LibC.O_WRONLY, 0x400 | 0x1ED /* 0755 */, 0, 0, out fd));
        fd!.Dispose();
        Assert.Equal(0x400u, HostStat.Of(Host("sg/root")).Mode & 0x400);
    }

    [Fact]
    public void Requester_without_write_permission_is_still_subject_to_its_identity()
    {
        using var c = _helper.Connect();
        Assert.Equal(0, c.Mkdir("/owned"u8, 0x1C0 /* 0700 */, 1000, 1000));
        Assert.Equal(0, c.Mkdir("/owned/sub"u8, 0x1ED /* 0755 */, 1000, 1000));
        Assert.Equal((1000u, 1000u), (HostStat.Of(Host("owned/sub")).Uid, HostStat.Of(Host("owned/sub")).Gid));
        Assert.Equal(-22, c.Mkdir("/bad"u8, 0x1ED /* 0755 */, uint.MaxValue, 0)); // -1 would mean "stay root"
        Assert.False(Directory.Exists(Host("bad")));
    }

    [Fact]
    public void Readlink_truncates_to_the_buffer_and_xattr_sizes_are_bounded()
    {
        using var c = _helper.Connect();
        File.CreateSymbolicLink(Host("l"), "0123456789");
        var small = new byte[4];
        Assert.Equal(4, c.Readlink("/l"u8, small));
        Assert.Equal("0123", Encoding.ASCII.GetString(small));
        var big = new byte[100];
        Assert.Equal(10, c.Readlink("/l"u8, big));
        Assert.Equal(-22, c.Readlink("/l"u8, Span<byte>.Empty));
        Assert.Equal(-22, c.Readlink("/"u8, big)); // not a link: EINVAL from the kernel
    }

    [Fact]
    public void Helper_keeps_serving_after_a_client_vanishes_mid_request()
    {
        using (var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified))
        {
            s.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(_helper.SocketPath));
            s.Send(new byte[] { 8, 0, 0, 0, 100, 0, 0, 0, 1 }); // header promises 100 bytes, sends 1
        }
        using var c = _helper.Connect();
        Assert.Equal(0, c.Lstat("/"u8, out _));
    }

    [Fact]
    public void Only_user_and_acl_xattrs_are_served()
    {
        using var c = _helper.Connect();
        Assert.Equal(0, c.Create("/x"u8, LibC.O_CREAT | LibC.O_WRONLY, 0x1A4, 0, 0, out var fd));
        fd!.Dispose();
        // security.selinux is acted on by the host's LSM: the backend must not set it (it could, as root).
        Assert.Equal(-EOPNOTSUPP, c.SetXattr("/x"u8, "security.selinux"u8, "system_u:object_r:etc_t:s0\0"u8, 0));
        Assert.Equal(-EOPNOTSUPP, c.SetXattr("/x"u8, "trusted.overlay.opaque"u8, "y"u8, 0));
        Assert.Equal(-EOPNOTSUPP, c.SetXattr("/x"u8, "system.nfs4_acl"u8, "y"u8, 0));
        Assert.Equal(0, c.SetXattr("/x"u8, "user.ok"u8, "1"u8, 0));
        // A label the host set is invisible and cannot be removed through the helper.
        unsafe
        {
            fixed (byte* p = Encoding.UTF8.GetBytes(Host("x") + "\0"))
            fixed (byte* n = "trusted.host\0"u8)
            fixed (byte* v = "h"u8)
            {
                Assert.Equal(0, setxattr(p, n, v, 1, 0));
            }
        }
        var buf = new byte[256];
        Assert.Equal(-ENODATA, c.GetXattr("/x"u8, "trusted.host"u8, buf));
        Assert.Equal(-ENODATA, c.RemoveXattr("/x"u8, "trusted.host"u8));
        int n2 = c.ListXattr("/x"u8, buf);
        Assert.True(n2 > 0);
        Assert.Equal("user.ok\0", Encoding.ASCII.GetString(buf, 0, n2));
        Assert.Equal(n2, c.ListXattr("/x"u8, Span<byte>.Empty)); // the size asked alone matches what is listed
    }

    [Fact]
    public void O_PATH_is_refused_on_open_and_create()
    {
        using var c = _helper.Connect();
        const int O_PATH = 0x200000, EINVAL = 22, ENXIO = 6;
        Assert.Equal(0, c.Mknod("/fifo"u8, 0x1000 | 0x1A4, 0, 0, 0));
        Assert.Equal(-EINVAL, c.Create("/fifo"u8, O_PATH | LibC.O_CREAT, 0x1A4, 0, 0, out _));
        Assert.Equal(-EINVAL, c.Open("/fifo"u8, O_PATH, out _));
        Assert.Equal(-ENXIO, c.Create("/fifo"u8, LibC.O_CREAT | LibC.O_RDONLY, 0x1A4, 0, 0, out _)); // existing fifo
    }

    [Fact]
    public unsafe void A_lease_on_a_file_does_not_park_the_helper()
    {
        using var c = _helper.Connect();
        File.WriteAllText(Host("leased"), "x");
        const int F_SETLEASE = 1024, F_RDLCK = 0, EAGAIN = 11;
        int holder;
        fixed (byte* p = Encoding.UTF8.GetBytes(Host("leased") + "\0")) holder = LibC.open(p, LibC.O_RDONLY | LibC.O_CLOEXEC);
        Assert.True(holder >= 0);
        using var holderHandle = new Microsoft.Win32.SafeHandles.SafeFileHandle(holder, ownsHandle: true);
        int rc = LibC.fcntl(holder, F_SETLEASE, F_RDLCK);
        Assert.True(rc == 0, $"F_SETLEASE: errno {LibC.errno}");
        const int F_SETOWN = 8;
        Assert.Equal(0, LibC.fcntl(holder, F_SETOWN, 0)); // no SIGIO to this test process when the helper breaks it
        var sw = Stopwatch.StartNew();
        Assert.Equal(-EAGAIN, c.Open("/leased"u8, LibC.O_RDWR, out _));
        Assert.Equal(-EAGAIN, c.Truncate("/leased"u8, 0));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}");
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern unsafe int setxattr(byte* path, byte* name, byte* value, nuint size, int flags);

    [Fact]
    public void Stalled_connections_time_out_and_never_lock_others_out()
    {
        // A 5 s timeout, so "served at once" (under 4 s) tells the two outcomes apart even on a loaded machine.
        using var helper = HelperProcess.StartNamed("--request-timeout", "5");
        var stalled = new List<System.Net.Sockets.Socket>();
        try
        {
            // 70 connections (more than the helper's 64 slots) each send half a header and stop.
            for (int i = 0; i < 70; i++)
            {
                var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix,
                    System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                s.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(helper.SocketPath));
                s.Send(new byte[] { 1, 0, 0 });
                stalled.Add(s);
            }
            // A new client is served at once, not after the stalled ones give up.
            var sw = Stopwatch.StartNew();
            using (var c = helper.Connect())
            {
                Assert.Equal(0, c.Lstat("/"u8, out _));
            }
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(4), $"answered after {sw.Elapsed}");
            // And every stalled connection is closed by the helper within the timeout (plus slack).
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            foreach (var s in stalled)
            {
                s.ReceiveTimeout = (int)Math.Max(1, (deadline - DateTime.UtcNow).TotalMilliseconds);
                Assert.Equal(0, s.Receive(new byte[16])); // EOF
            }
        }
        finally
        {
            foreach (var s in stalled) s.Dispose();
        }
    }

    [Fact]
    public void An_export_the_uid_can_reach_gets_no_setuid_files_or_device_nodes()
    {
        const UnixFileMode open0755 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        using var exposed = HelperProcess.StartNamed(open0755, "-u", "65534", "-g", "65534");
        using var c = exposed.Connect(); // as root: allowed alongside the -u uid
        Assert.Equal(0, c.Create("/f"u8, LibC.O_CREAT | LibC.O_WRONLY, 0x1ED, 0, 0, out var fd));
        fd!.Dispose();
        Assert.Equal(-EPERM, c.Chmod("/f"u8, 0x9ED));            // 04755
        Assert.Equal(-EPERM, c.Chmod("/f"u8, 0x5ED));            // 02755: setgid executable
        Assert.Equal(-EPERM, c.Chmod("/f"u8, 0x5E4));            // 02744: an ACL with group x would make it one
        Assert.Equal(-EPERM, c.Mknod("/m"u8, 0x8000 | 0x9ED, 0, 0, 0)); // a regular setuid file through mknod
        // A refused mknod as another user leaves the connection's thread root: the next root request works.
        Assert.Equal(-EPERM, c.Mknod("/dev1"u8, 0x2000 | 0x1B6, 0x103, 4321, 4321));
        Assert.Equal(0, c.Chown("/f"u8, 0, 0));
        Assert.Equal(-EPERM, c.Create("/g"u8, LibC.O_CREAT | LibC.O_WRONLY, 0x9ED, 0, 0, out _));
        Assert.Equal(-EPERM, c.Mknod("/dev0"u8, 0x2000 | 0x1B6, 0x103, 0, 0)); // char 1:3, 0666
        Assert.Equal(0, c.Mknod("/fifo"u8, 0x1000 | 0x1A4, 0, 0, 0));
        Assert.Equal(0, c.Mkdir("/d"u8, 0x1ED, 0, 0));
        Assert.Equal(0, c.Chmod("/d"u8, 0x5ED));                 // setgid directory: group inheritance only
        // The warning is written before the socket exists; the async stderr reader may deliver it later.
        Assert.True(exposed.WaitForStderr("can reach the export", TimeSpan.FromSeconds(30)), "helper stderr: " + exposed.Stderr);
        // Files that already carry the bits (a guest's su, a host-made node) are not a way around it:
        string suid = Path.Combine(exposed.Export, "su");
        File.WriteAllText(suid, "#!");
        File.SetUnixFileMode(suid, (UnixFileMode)0xDED); // 06755
        Assert.Equal(0, c.Open("/su"u8, LibC.O_RDONLY, out var ro));
        ro!.Dispose();
        Assert.Equal(0xDEDu, HostStat.Of(suid).Mode & 0xFFF);       // reading keeps them
        Assert.Equal(0, c.Open("/su"u8, LibC.O_RDWR, out var rw)); // a writable fd drops them first
        rw!.Dispose();
        Assert.Equal(0x1EDu, HostStat.Of(suid).Mode & 0xFFF);
        unsafe
        {
            fixed (byte* p = Encoding.UTF8.GetBytes(Path.Combine(exposed.Export, "null") + "\0"))
            {
                Assert.Equal(0, LibC.mknod(p, (mode_t)(ushort)(0x2000 | 0x180), 0x103)); // char 1:3, 0600 root
            }
        }
        Assert.Equal(-EPERM, c.Chown("/null"u8, 65534, 65534));
        Assert.Equal(-EPERM, c.Chmod("/null"u8, 0x1B6));

        // The same requests on an export kept out of reach (0700 parent) are served as POSIX says.
        using var c2 = _helper.Connect();
        Assert.Equal(0, c2.Create("/f"u8, LibC.O_CREAT | LibC.O_WRONLY, 0x1ED, 0, 0, out fd));
        fd!.Dispose();
        Assert.Equal(0, c2.Chmod("/f"u8, 0x9ED));
        Assert.Equal(0, c2.Mknod("/dev0"u8, 0x2000 | 0x1B6, 0x103, 0, 0));
    }
}

public sealed class ProcessTests
{
    [Fact]
    public unsafe void Inherited_fds_are_closed()
    {
        string root = Directory.CreateTempSubdirectory("proxy-fds-").FullName;
        string export = Path.Combine(root, "export");
        Directory.CreateDirectory(export);
        string sock = Path.Combine(root, "s.sock");
        int* pipe = stackalloc int[2];
        Assert.Equal(0, LibC.pipe(pipe)); // no CLOEXEC: the helper inherits both ends
        try
        {
            string pipeInode = new FileInfo($"/proc/self/fd/{pipe[0]}").LinkTarget!;
            using var p = Process.Start(HelperProcess.StartInfo("-n", "-p", export, "-s", sock, "-u", "0", "-g", "0"))!;
            p.BeginErrorReadLine();
            try
            {
                var sw = Stopwatch.StartNew();
                while (!File.ReadAllText($"/proc/{p.Id}/status").Contains("NoNewPrivs:\t1") && sw.Elapsed < TimeSpan.FromSeconds(30))
                    Thread.Sleep(20);
                var targets = Directory.GetFiles($"/proc/{p.Id}/fd").Select(f => new FileInfo(f).LinkTarget).ToList();
                Assert.DoesNotContain(pipeInode, targets);
                using var c = ProxyClient.Connect(sock);
                Assert.Equal(0, c.Lstat("/"u8, out _));
            }
            finally
            {
                p.Kill();
                p.WaitForExit();
            }
        }
        finally
        {
            LibC.close(pipe[0]);
            LibC.close(pipe[1]);
            Directory.Delete(root, true);
        }
    }

    [Fact]
    public void Daemon_mode_detaches_and_serves()
    {
        string root = Directory.CreateTempSubdirectory("proxy-daemon-").FullName;
        string export = Path.Combine(root, "export");
        Directory.CreateDirectory(export);
        string sock = Path.Combine(root, "s.sock");
        try
        {
            var psi = HelperProcess.StartInfo("-p", export, "-s", sock, "-u", "0", "-g", "0");
            using (var parent = Process.Start(psi)!)
            {
                parent.StandardError.ReadToEnd();
                Assert.True(parent.WaitForExit(30000));
                Assert.Equal(0, parent.ExitCode);
            }
            var sw = Stopwatch.StartNew();
            ProxyClient? c = null;
            while (c is null && sw.Elapsed < TimeSpan.FromSeconds(30))
            {
                try { c = ProxyClient.Connect(sock); } catch (ProxyConnectionException) { Thread.Sleep(50); }
            }
            Assert.NotNull(c);
            using (c) Assert.Equal(0, c!.Lstat("/"u8, out _));
            // Stop the detached helper: the one started with our socket path. (Its /proc/PID/root is no help: it
            // pivots into the export, so the link reads "/".)
            bool killed = false;
            foreach (var dir in Directory.GetDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
                try
                {
                    string[] argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                    if (Array.IndexOf(argv, sock) >= 0 && Array.IndexOf(argv, "-s") >= 0)
                    {
                        Process.GetProcessById(pid).Kill();
                        killed = true;
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException) { }
            }
            Assert.True(killed, "the detached helper was not found to stop");
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }
}

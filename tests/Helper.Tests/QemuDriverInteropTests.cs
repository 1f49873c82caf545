using System.Net.Sockets;
using System.Text;
using VirtFs.Helper;
using VirtFs.ProxyFs;
using VirtFs.ProxyFs.Protocol;

namespace VirtFs.Helper.Tests;

/// <summary>
/// Our helper against what QEMU 7.2's proxy driver (hw/9pfs/9p-proxy.c) really sends, byte for byte, as seen
/// when a real QEMU 7.2 met it (tools/vm.sh --server qemu72-proxy). docs/proxy-protocol.md, "Interop with QEMU 7.2".
/// </summary>
public sealed class QemuDriverInteropTests : IDisposable
{
    private readonly HelperProcess _helper = HelperProcess.StartNamed();

    public void Dispose() => _helper.Dispose();

    private static byte[] S(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        var r = new byte[2 + b.Length];
        BitConverter.TryWriteBytes(r.AsSpan(0, 2), (ushort)b.Length);
        b.CopyTo(r, 2);
        return r;
    }

    private static byte[] D(int v) => BitConverter.GetBytes(v);

    /// <summary>One request on a fresh connection; returns (reply type, body).</summary>
    private (uint Type, byte[] Body) Request(ProxyRequestType type, params byte[][] fields)
    {
        var body = fields.SelectMany(f => f).ToArray();
        var h = new byte[8];
        new ProxyHeader((uint)type, (uint)body.Length).Write(h);
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(_helper.SocketPath));
        s.ReceiveTimeout = 10000;
        s.Send(h.Concat(body).ToArray());
        var rh = ReadExactly(s, 8);
        uint rtype = BitConverter.ToUInt32(rh, 0), rsize = BitConverter.ToUInt32(rh, 4);
        Assert.True(rsize <= ProxyLimits.MaxBodySize);
        return (rtype, ReadExactly(s, (int)rsize));
    }

    private static byte[] ReadExactly(Socket s, int n)
    {
        var b = new byte[n];
        for (int got = 0; got < n;)
        {
            int r = s.Receive(b, got, n - got, SocketFlags.None);
            Assert.True(r > 0, "helper closed the connection");
            got += r;
        }
        return b;
    }

    /// <summary>A peer that answers every status request with 0 and records (type, body).</summary>
    private static List<(ProxyRequestType Type, byte[] Body)> RecordStatusRequests(Action<ProxyClient> act)
    {
        var fds = SocketPair();
        var seen = new List<(ProxyRequestType, byte[])>();
        using var peer = new Socket(new SafeSocketHandle((IntPtr)fds[1], ownsHandle: true));
        var t = new Thread(() =>
        {
            try
            {
                while (true)
                {
                    var h = ReadExactly(peer, 8);
                    var body = ReadExactly(peer, (int)BitConverter.ToUInt32(h, 4));
                    lock (seen) seen.Add(((ProxyRequestType)BitConverter.ToUInt32(h, 0), body));
                    peer.Send(new byte[] { 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0 }); // {T_SUCCESS, 4} status 0
                }
            }
            catch (Exception) { } // EOF: the client is done
        });
        t.Start();
        using (var c = ProxyClient.FromFd(fds[0])) act(c);
        t.Join(10000);
        lock (seen) return seen.ToList();
    }

    private static unsafe int[] SocketPair()
    {
        int* fds = stackalloc int[2];
        Assert.Equal(0, Tmds.Linux.LibC.socketpair(Tmds.Linux.LibC.AF_UNIX, Tmds.Linux.LibC.SOCK_STREAM | Tmds.Linux.LibC.SOCK_CLOEXEC, 0, fds));
        return new[] { fds[0], fds[1] };
    }

    private static (uint Uid, uint Gid) CreatorIds(ProxyRequestType type, byte[] body)
    {
        // T_MKDIR "ddsd", T_MKNOD "ddsdq", T_SYMLINK "ddss": uid, gid first.
        Assert.Contains(type, new[] { ProxyRequestType.Mkdir, ProxyRequestType.Mknod, ProxyRequestType.Symlink });
        return (BitConverter.ToUInt32(body, 0), BitConverter.ToUInt32(body, 4));
    }

    [Fact]
    public void Root_with_a_group_is_sent_as_root_then_chowned()
    {
        var seen = RecordStatusRequests(c =>
        {
            Assert.Equal(0, c.Mkdir("/d"u8, 0x1ED, 0, 1000));
            Assert.Equal(0, c.Symlink("t"u8, "/l"u8, 0, 1000));
            Assert.Equal(0, c.Mknod("/n"u8, 0x11A4 /* fifo 0644 */, 0, 0, 1000));
        });
        Assert.Equal(6, seen.Count);
        for (int i = 0; i < 6; i += 2)
        {
            Assert.Equal((0u, 0u), CreatorIds(seen[i].Type, seen[i].Body));
            Assert.Equal(ProxyRequestType.Chown, seen[i + 1].Type);
            var b = seen[i + 1].Body;
            int n = BitConverter.ToUInt16(b, 0);
            Assert.Equal((0u, 1000u), (BitConverter.ToUInt32(b, 2 + n), BitConverter.ToUInt32(b, 6 + n)));
        }
    }

    [Fact]
    public void Other_identities_go_in_one_request()
    {
        var seen = RecordStatusRequests(c =>
        {
            Assert.Equal(0, c.Mkdir("/a"u8, 0x1ED, 0, 0));
            Assert.Equal(0, c.Mkdir("/b"u8, 0x1ED, 1000, 1000));
            Assert.Equal(0, c.Mkdir("/c"u8, 0x1ED, 1000, 0));
        });
        Assert.Equal(new[] { (0u, 0u), (1000u, 1000u), (1000u, 0u) }, seen.Select(r => CreatorIds(r.Type, r.Body)).ToArray());
    }

    [Fact]
    public void Root_with_a_group_gets_that_group_from_our_helper_too()
    {
        using var c = _helper.Connect();
        Assert.Equal(0, c.Mkdir("/rg"u8, 0x1ED, 0, 4321));
        Assert.Equal(0, c.Create("/rg/f"u8, 0x41 /* O_WRONLY|O_CREAT */, 0x1A4, 0, 4321, out var fd));
        fd!.Dispose();
        foreach (var rel in new[] { "rg", "rg/f" })
        {
            var st = new FileInfo(Path.Combine(_helper.Export, rel));
            Assert.Equal(0u, Stat(st.FullName).Uid);
            Assert.Equal(4321u, Stat(st.FullName).Gid);
        }
    }

    [Qemu72HelperFact]
    public void Qemus_helper_survives_root_creates_with_a_group_then_user_creates()
    {
        // Without the 0:0 + T_CHOWN split, the second create aborted QEMU 7.2's helper (setxid mismatch).
        string root = Directory.CreateTempSubdirectory("proxy-qemu-gid-").FullName;
        string export = Path.Combine(root, "export");
        Directory.CreateDirectory(export);
        string sock = Path.Combine(root, "s.sock");
        using var p = System.Diagnostics.Process.Start(Qemu72Helper.StartInfo("-n", "-p", export, "-s", sock, "-u", "0", "-g", "0"))!;
        p.BeginErrorReadLine();
        try
        {
            ProxyClient? c = null;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (c is null && sw.Elapsed < TimeSpan.FromSeconds(20))
            {
                try { c = ProxyClient.Connect(sock); } catch (ProxyConnectionException) { Thread.Sleep(50); }
            }
            Assert.NotNull(c);
            using (c)
            {
                Assert.Equal(0, c!.Mkdir("/sg"u8, 0x1FF, 0, 1000));
                Assert.Equal(0, c.Create("/sg/root"u8, 0x41, 0x1A4, 0, 1000, out var fd1));
                fd1!.Dispose();
                Assert.Equal(0, c.Create("/sg/user"u8, 0x41, 0x1A4, 1001, 1000, out var fd2));
                fd2!.Dispose();
                Assert.Equal(0, c.Mkdir("/sg/userdir"u8, 0x1ED, 1001, 1000));
                Assert.False(c.IsBroken);
            }
            Assert.Equal((0u, 1000u), Stat(Path.Combine(export, "sg")));
            Assert.Equal((0u, 1000u), Stat(Path.Combine(export, "sg/root")));
            Assert.Equal((1001u, 1000u), Stat(Path.Combine(export, "sg/user")));
            Assert.Equal((1001u, 1000u), Stat(Path.Combine(export, "sg/userdir")));
        }
        finally
        {
            if (!p.HasExited) p.Kill();
            p.WaitForExit();
            Directory.Delete(root, true);
        }
    }

    private static unsafe (uint Uid, uint Gid) Stat(string path)
    {
        Tmds.Linux.stat st;
        var b = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = b) Assert.Equal(0, Tmds.Linux.LibC.lstat(p, &st));
        return ((uint)st.st_uid, (uint)st.st_gid);
    }

    [Fact]
    public void CPath_accepts_one_trailing_nul_as_the_terminator()
    {
        var c = new CPath();
        Assert.Equal(0, c.Set("/\0"u8, out var p));
        Assert.Equal((byte)'/', p[0]);
        Assert.Equal(0, p[1]);
        Assert.Equal(0, c.Set("a/b\0"u8, out p));
        Assert.Equal("a/b\0"u8.ToArray(), p.Take(4).ToArray());
        Assert.Equal(-Errno.EINVAL, c.Set("a\0b"u8, out _));
        Assert.Equal(-Errno.EINVAL, c.Set("a\0\0"u8, out _));
        Assert.Equal(0, c.Set("plain"u8, out _));
    }

    [Fact]
    public void Lstat_of_a_v9fspath_with_its_nul_succeeds()
    {
        // QEMU 7.2's v9fs_device_realize_common lstat()s "/" through the driver, which marshals the V9fsPath
        // {size = 2, "/\0"}: refusing it made QEMU fail with "share path ... does not exist".
        var (type, body) = Request(ProxyRequestType.Lstat, S("/\0"));
        Assert.Equal(0u, type);
        Assert.Equal(116, body.Length); // "qqqdddqqqqqqqqqq"
    }

    [Fact]
    public void Chmod_and_open_of_a_v9fspath_with_its_nul_succeed()
    {
        File.WriteAllText(Path.Combine(_helper.Export, "f"), "x");
        var (type, body) = Request(ProxyRequestType.Chmod, S("/f\0"), D(0x1A4 /* 0644 */));
        Assert.Equal(0u, type);
        Assert.Equal(0, BitConverter.ToInt32(body));
        // An embedded NUL is still refused: the kernel would name a different file.
        (type, body) = Request(ProxyRequestType.Chmod, S("/f\0x"), D(0x1A4));
        Assert.Equal(1u, type);
        Assert.Equal(-Errno.EINVAL, BitConverter.ToInt32(body));
    }
}

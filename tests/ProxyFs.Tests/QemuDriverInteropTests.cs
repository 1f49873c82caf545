using System.Net.Sockets;
using System.Text;
using VirtFs.Helper;
using VirtFs.ProxyFs.Protocol;

namespace VirtFs.ProxyFs.Tests;

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

    [Fact]
    public void CPath_accepts_one_trailing_nul_as_the_terminator()
    {
        var c = new CPath();
        Assert.Equal(0, c.Set("/\0"u8, out var p));
        Assert.Equal((byte)'/', p[0]);
        Assert.Equal(0, p[1]);
        Assert.Equal(0, c.Set("a/b\0"u8, out p));
        Assert.Equal("a/b\0"u8.ToArray(), p.Take(4).ToArray());
        Assert.Equal(-ProxyErrno.EINVAL, c.Set("a\0b"u8, out _));
        Assert.Equal(-ProxyErrno.EINVAL, c.Set("a\0\0"u8, out _));
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
        Assert.Equal(-ProxyErrno.EINVAL, BitConverter.ToInt32(body));
    }
}

using System.Net.Sockets;
using System.Text;
using VirtFs.Common;

namespace VirtFs.Virtio9p.Tests.Operability;

/// <summary>The readiness message systemd reads (sd_notify(3)), seen by a fake NOTIFY_SOCKET.</summary>
public sealed class SdNotifyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("notify-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Receive(Socket socket)
    {
        socket.ReceiveTimeout = 5000;
        var buffer = new byte[4096];
        int n = socket.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    [Fact]
    public void Ready_reaches_a_path_socket()
    {
        string path = Path.Combine(_dir, "notify");
        using var systemd = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        systemd.Bind(new UnixDomainSocketEndPoint(path));
        using SdNotify notify = SdNotify.Open(path);
        Assert.Null(notify.Problem);
        Assert.True(notify.Ready("serving"));
        string message = Receive(systemd);
        Assert.StartsWith("READY=1\n", message);
        Assert.Contains("STATUS=serving\n", message);
        Assert.True(notify.Stopping());
        Assert.Equal("STOPPING=1\n", Receive(systemd));
    }

    [Fact]
    public void Ready_reaches_an_abstract_socket()
    {
        string name = $"virtfs-test-{Environment.ProcessId}-{Guid.NewGuid():N}";
        using var systemd = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        systemd.Bind(new UnixDomainSocketEndPoint("\0" + name));
        using SdNotify notify = SdNotify.Open("@" + name);
        Assert.Null(notify.Problem);
        Assert.True(notify.Ready("x"));
        Assert.StartsWith("READY=1\n", Receive(systemd));
    }

    [Fact]
    public void Without_systemd_nothing_is_sent_and_nothing_fails()
    {
        using SdNotify none = SdNotify.Open((string?)null);
        Assert.Null(none.Problem);
        Assert.False(none.Ready("x"));
        using SdNotify relative = SdNotify.Open("relative/path");
        Assert.NotNull(relative.Problem);
        Assert.False(relative.Ready("x"));
        using SdNotify missing = SdNotify.Open(Path.Combine(_dir, "nobody-listens"));
        Assert.Contains("connect failed", missing.Problem);
    }
}

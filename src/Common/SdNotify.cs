using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.Common;

/// <summary>
/// systemd's readiness protocol (sd_notify(3), "Type=notify") without libsystemd: one datagram "READY=1" to the
/// AF_UNIX socket named by $NOTIFY_SOCKET, a path or, starting with '@', an abstract name. The socket is connected
/// by <see cref="Open"/>, early, while the process can still reach the path: both executables confine themselves
/// (seccomp, pivot_root) before they are ready. A missing or unusable $NOTIFY_SOCKET is not an error: outside
/// systemd there is nobody to tell.
/// </summary>
public sealed unsafe class SdNotify : IDisposable
{
    private int _fd;

    private SdNotify(int fd) => _fd = fd;

    /// <summary>The error that kept <see cref="Open"/> from connecting, for the log; null when it connected or
    /// there was no $NOTIFY_SOCKET.</summary>
    public string? Problem { get; private init; }

    /// <summary>Connects to $NOTIFY_SOCKET and unsets it (children must not notify in our name).</summary>
    public static SdNotify Open()
    {
        string? name = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
        return Open(name);
    }

    public static SdNotify Open(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return new SdNotify(-1);
        }
        byte[] path = Encoding.UTF8.GetBytes(name);
        if ((path[0] != '/' && path[0] != '@') || path.Length >= sockaddr_un.sun_path_length)
        {
            return new SdNotify(-1) { Problem = $"NOTIFY_SOCKET '{name}' is neither an absolute path nor @abstract" };
        }
        sockaddr_un address = default;
        address.sun_family = AF_UNIX;
        // SAFETY: path.Length < sun_path_length (checked above); address is a local of the right type.
        byte* sunPath = (byte*)&address + sockaddr_un.sun_path_offset;
        path.CopyTo(new Span<byte>(sunPath, sockaddr_un.sun_path_length));
        int length = sockaddr_un.sun_path_offset + path.Length;
        if (path[0] == '@')
        {
            sunPath[0] = 0; // abstract namespace: the length, not a NUL, ends the name
        }
        else
        {
            length++; // a path counts its terminating NUL
        }
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            return new SdNotify(-1) { Problem = $"NOTIFY_SOCKET: socket failed: errno {errno}" };
        }
        if (connect(fd, (sockaddr*)&address, (socklen_t)length) < 0)
        {
            int error = errno;
            close(fd);
            return new SdNotify(-1) { Problem = $"NOTIFY_SOCKET {name}: connect failed: errno {error}" };
        }
        return new SdNotify(fd);
    }

    /// <summary>"READY=1" plus a status line; true when sent.</summary>
    public bool Ready(string status) => Send($"READY=1\nSTATUS={status}\nMAINPID={Environment.ProcessId}\n");

    /// <summary>"STOPPING=1": the service is shutting down on purpose.</summary>
    public bool Stopping() => Send("STOPPING=1\n");

    private bool Send(string message)
    {
        int fd = Volatile.Read(ref _fd);
        if (fd < 0)
        {
            return false;
        }
        byte[] bytes = Encoding.UTF8.GetBytes(message);
        fixed (byte* p = bytes)
        {
            // SAFETY: p points to bytes.Length pinned bytes.
            return send(fd, p, bytes.Length, MSG_NOSIGNAL) == bytes.Length;
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            close(fd);
        }
    }
}

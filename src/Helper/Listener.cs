using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.Helper;

/// <summary>The named socket (-s): created before the chroot, owned by -u/-g, mode 0770 (QEMU's helper binds under
/// umask 7). Unlike QEMU's helper, which accepts once, it keeps accepting so the backend can pool connections;
/// each connection gets its own thread, created from the sandboxed main thread so it inherits the sandbox.</summary>
internal static unsafe class Listener
{
    public static int Create(string path, int uid, int gid)
    {
        byte[] p = Encoding.UTF8.GetBytes(path);
        if (p.Length == 0 || p.Length >= sockaddr_un.sun_path_length)
            throw new Sandbox.SandboxException($"socket path longer than {sockaddr_un.sun_path_length - 1} bytes", EINVAL);
        byte[] cpath = new byte[p.Length + 1];
        p.CopyTo(cpath, 0);
        fixed (byte* cp = cpath)
        {
            // A stale socket from a previous run is replaced; anything else at that path is refused.
            stat st;
            if (lstat(cp, &st) == 0)
            {
                if (((ushort)st.st_mode & 0xF000) != 0xC000)
                    throw new Sandbox.SandboxException($"{path} exists and is not a socket", EEXIST);
                if (unlink(cp) < 0) throw new Sandbox.SandboxException("unlink stale socket", errno);
            }

            int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) throw new Sandbox.SandboxException("socket", errno);
            sockaddr_un addr = default;
            addr.sun_family = AF_UNIX;
            p.CopyTo(new Span<byte>((byte*)&addr + sockaddr_un.sun_path_offset, sockaddr_un.sun_path_length));
            mode_t old = umask(7);
            int rc = bind(fd, (sockaddr*)&addr, sizeof(sockaddr_un));
            int err = errno;
            umask(old);
            if (rc < 0) { close(fd); throw new Sandbox.SandboxException("bind", err); }
            if (chown(cp, (uint)uid, (uint)gid) < 0) { err = errno; close(fd); throw new Sandbox.SandboxException("chown socket", err); }
            if (listen(fd, 16) < 0) { err = errno; close(fd); throw new Sandbox.SandboxException("listen", err); }
            return fd;
        }
    }

    /// <summary>Each connection costs a thread and ~200 KiB of buffers; a pool needs a handful. Beyond this the
    /// new connection is closed at once (logged), so a misbehaving client cannot exhaust the helper.</summary>
    public const int MaxConnections = 64;

    private static int s_active;

    /// <summary>Accepts forever; a connection's failure never stops the others.</summary>
    public static void Serve(int listenFd, bool getVersion)
    {
        int n = 0;
        while (true)
        {
            int c = accept4(listenFd, null, null, SOCK_CLOEXEC);
            if (c < 0)
            {
                int err = errno;
                if (err == EINTR || err == ECONNABORTED) continue;
                if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
                {
                    Thread.Sleep(100); // out of resources: wait for connections to close
                    continue;
                }
                Log.Error($"accept failed: errno {err}");
                return;
            }
            string name = $"connection {++n}";
            if (Interlocked.Increment(ref s_active) > MaxConnections)
            {
                Interlocked.Decrement(ref s_active);
                Log.Warn($"{name}: refused, {MaxConnections} connections already open");
                close(c);
                continue;
            }
            Log.Info($"{name}: accepted");
            var conn = new Connection(c, name, getVersion);
            var thread = new Thread(() =>
            {
                try { conn.Run(); }
                finally { Interlocked.Decrement(ref s_active); }
            }) { IsBackground = true, Name = name };
            thread.Start();
        }
    }
}

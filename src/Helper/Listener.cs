using System.Text;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.Helper.Interop;
using static Tmds.Linux.LibC;

namespace VirtFs.Helper;

/// <summary>The named socket (-s): created before the sandbox, owned by -u/-g, mode 0770 (QEMU's helper binds under
/// umask 7). Unlike QEMU's helper, which accepts once, it keeps accepting so the backend can pool connections;
/// each connection gets its own thread, created from the sandboxed main thread so it inherits the sandbox.</summary>
internal static unsafe class Listener
{
    /// <summary>The listening socket, owned by the returned handle.</summary>
    public static SafeFileHandle Create(string path, int uid, int gid)
    {
        byte[] p = Encoding.UTF8.GetBytes(path);
        if (p.Length == 0 || p.Length >= sockaddr_un.sun_path_length)
            throw new Sandbox.SandboxException($"socket path longer than {sockaddr_un.sun_path_length - 1} bytes", EINVAL);
        byte[] cpath = new byte[p.Length + 1];
        p.CopyTo(cpath, 0);
        fixed (byte* cp = cpath)
        {
            // SAFETY: cpath is NUL-terminated (one byte longer than p) and pinned for the calls below; addr and st
            // are locals, and the copy into sun_path is bounded by sun_path_length (p.Length checked above).
            // A stale socket from a previous run is replaced; anything else at that path is refused. unlink acts on
            // the name itself, never on what a symlink there points to.
            stat st;
            if (lstat(cp, &st) == 0)
            {
                if (((ushort)st.st_mode & 0xF000) != 0xC000)
                    throw new Sandbox.SandboxException($"{path} exists and is not a socket", EEXIST);
                if (unlink(cp) < 0) throw new Sandbox.SandboxException("unlink stale socket", errno);
            }

            int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) throw new Sandbox.SandboxException("socket", errno);
            var listener = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
            sockaddr_un addr = default;
            addr.sun_family = AF_UNIX;
            p.CopyTo(new Span<byte>((byte*)&addr + sockaddr_un.sun_path_offset, sockaddr_un.sun_path_length));
            int err = BindAs(fd, &addr, (uint)uid, (uint)gid);
            if (err != 0) { listener.Dispose(); throw new Sandbox.SandboxException("bind", err); }
            if (listen(fd, 16) < 0) { err = errno; listener.Dispose(); throw new Sandbox.SandboxException("listen", err); }
            return listener;
        }
    }

    /// <summary>
    /// Binds so that the socket is born owned by uid:gid with mode 0770. Attack stopped: binding as root and then
    /// chown()ing the path left a window in which the owner of the socket's directory could put a symlink there
    /// and have any root file chowned to it. Here nothing is done by path after the bind: the kernel gives the new
    /// socket inode this thread's filesystem ids, set to uid/gid for the call (setfsuid/setfsgid, raw so only this
    /// thread changes). DAC_OVERRIDE is raised again (a change of fsuid from 0 clears it) so root may still create
    /// the socket in a directory the uid cannot write. Returns 0 or errno.
    /// </summary>
    private static int BindAs(int fd, sockaddr_un* addr, uint uid, uint gid)
    {
        if (uid == uint.MaxValue || gid == uint.MaxValue) return EINVAL;
        mode_t oldMask = umask(7);
        LibC.syscall(Syscalls.SYS_setfsgid, (int)gid);
        LibC.syscall(Syscalls.SYS_setfsuid, (int)uid);
        int err = 0;
        try
        {
            // setfsuid reports the previous id, not success: read both back (an invalid id changes nothing).
            if ((int)(ssize_t)LibC.syscall(Syscalls.SYS_setfsuid, -1) != (int)uid ||
                (int)(ssize_t)LibC.syscall(Syscalls.SYS_setfsgid, -1) != (int)gid)
                return EPERM;
            int r = Capabilities.RaiseEffective(1u << Capabilities.CAP_DAC_OVERRIDE);
            if (r < 0) return -r;
            // SAFETY: addr points to a sockaddr_un on the caller's frame.
            if (bind(fd, (sockaddr*)addr, sizeof(sockaddr_un)) < 0) err = errno;
            return err;
        }
        finally
        {
            // Back to 0: the kernel refills the filesystem capabilities from the permitted set.
            LibC.syscall(Syscalls.SYS_setfsuid, 0);
            LibC.syscall(Syscalls.SYS_setfsgid, 0);
            if ((int)(ssize_t)LibC.syscall(Syscalls.SYS_setfsuid, -1) != 0 ||
                (int)(ssize_t)LibC.syscall(Syscalls.SYS_setfsgid, -1) != 0)
                Environment.FailFast("virtfs-proxy-helper: cannot restore filesystem ids after bind");
            umask(oldMask);
        }
    }

    /// <summary>Each connection costs a thread and ~200 KiB of buffers; a pool needs a handful. At this many, a
    /// new connection evicts the one that has been quiet longest (<see cref="Admit"/>).</summary>
    public const int MaxConnections = 64;

    /// <summary>Connection threads at most, stuck evicted ones included: what bounds the helper's memory.</summary>
    public const int MaxThreads = 512;

    private static readonly List<Connection> s_connections = new();
    private static readonly RateLimitedLog s_refusals = new(TimeSpan.FromSeconds(1));

    /// <summary>Accepts forever; a connection's failure never stops the others.</summary>
    public static void Serve(SafeFileHandle listener, bool getVersion, HelperOptions options)
    {
        // Held for as long as we accept: the number stays valid.
        using var listen = new FdUse(listener);
        int listenFd = listen.Fd;
        int n = 0;
        uint allowedUid = (uint)options.Uid;
        int timeoutSeconds = options.RequestTimeoutSeconds;
        var xattrs = options.Xattrs;
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
            var socket = new SafeFileHandle((IntPtr)c, ownsHandle: true);
            string name = $"connection {++n}";
            // Only the uid the socket was made for, and root, are served: a process that shares the socket's
            // group, or reaches it through a badly set directory, gets nothing (SO_PEERCRED: who connected).
            int peer = PeerUid(socket, out uint peerUid);
            if (peer < 0 || (peerUid != allowedUid && peerUid != 0))
            {
                s_refusals.Warn(peer < 0 ? $"{name}: refused, SO_PEERCRED failed (errno {-peer})"
                    : $"{name}: refused, peer uid {peerUid} is neither {allowedUid} nor 0");
                socket.Dispose();
                continue;
            }
            var conn = new Connection(socket, name, getVersion, timeoutSeconds, xattrs);
            if (!Admit(conn))
            {
                s_refusals.Warn($"{name}: refused, {MaxThreads} connection threads still exist");
                socket.Dispose();
                continue;
            }
            Log.Info($"{name}: accepted (uid {peerUid})");
            var thread = new Thread(() =>
            {
                try { conn.Run(); }
                finally
                {
                    lock (s_connections) s_connections.Remove(conn);
                }
            }) { IsBackground = true, Name = name };
            try
            {
                thread.Start();
            }
            catch (Exception e) when (e is OutOfMemoryException or ThreadStartException)
            {
                // No thread to be had (TasksMax, memory): this connection goes, the helper and the others stay.
                lock (s_connections) s_connections.Remove(conn);
                socket.Dispose();
                s_refusals.Warn($"{name}: refused, no thread for it ({e.GetType().Name})");
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>
    /// Registers a new connection. Attack stopped: connections that stall (an idle flood, or half-sent requests
    /// until they time out) used to fill every slot, and each new connection was then reset. Now a new connection
    /// at the limit evicts the connection whose last complete request is oldest (a pool's busy connections are
    /// recent; a stalled one is not); the evicted one's thread sees EOF and ends. Evicted threads that cannot end
    /// yet do not count against the limit, only against <see cref="MaxThreads"/>; past that, new connections are
    /// refused.
    /// </summary>
    private static bool Admit(Connection conn)
    {
        Connection? victim = null;
        lock (s_connections)
        {
            // Evicted connections whose thread is still stuck in the kernel (a request on an inode the client holds
            // locked, e.g. through a FUSE mapping in its own namespace: no signal ends that wait) no longer count
            // against new ones, only against this bound on threads.
            if (s_connections.Count >= MaxThreads) return false;
            int live = 0;
            foreach (var c in s_connections)
            {
                if (c.Evicted) continue;
                live++;
                if (victim is null || c.LastActivity < victim.LastActivity) victim = c;
            }
            if (live < MaxConnections) victim = null;
            s_connections.Add(conn);
        }
        if (victim is not null)
        {
            s_refusals.Warn($"{victim.Name}: evicted for a new connection ({MaxConnections} open, it was the quietest)");
            victim.Evict();
        }
        return true;
    }

    private static int PeerUid(SafeFileHandle socket, out uint uid)
    {
        using var use = new FdUse(socket);
        int r = SocketOptions.PeerCredentials(use.Fd, out var cred);
        uid = cred.Uid;
        return r;
    }
}

/// <summary>One log line per interval at most, with a count of what was held back: connection refusals are
/// triggered by the peer, and must not flood the log.</summary>
internal sealed class RateLimitedLog(TimeSpan interval)
{
    private long _nextAllowed;
    private int _suppressed;

    public void Warn(string message)
    {
        long now = Environment.TickCount64;
        lock (this)
        {
            if (now < _nextAllowed)
            {
                _suppressed++;
                return;
            }
            _nextAllowed = now + (long)interval.TotalMilliseconds;
            if (_suppressed > 0) message += $" ({_suppressed} similar messages suppressed)";
            _suppressed = 0;
        }
        Log.Warn(message);
    }
}

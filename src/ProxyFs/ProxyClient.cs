using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.ProxyFs.Protocol;
using VirtFs.ProxyFs.Transport;
using static Tmds.Linux.LibC;

namespace VirtFs.ProxyFs;

/// <summary>
/// Client of the proxy-FS protocol (QEMU 7.2 hw/9pfs/9p-proxy.c). One request at a time per connection
/// (the protocol has no tags); not thread-safe. Paths are raw bytes without NUL. Methods return &gt;= 0 on
/// success or a negative Linux errno; a transport failure throws <see cref="ProxyConnectionException"/> and
/// leaves the client <see cref="IsBroken"/>. Buffers are per client and reused: no allocation per request.
/// </summary>
public sealed unsafe class ProxyClient : IDisposable
{
    private readonly SafeFileHandle _socket;
    private readonly byte[] _send = new byte[ProxyLimits.MaxMessageSize];
    private readonly byte[] _receive = new byte[ProxyLimits.MaxMessageSize];
    private bool _broken;

    private ProxyClient(SafeFileHandle socket) => _socket = socket;

    public bool IsBroken => _broken || _socket.IsClosed;

    /// <summary>Connects to a helper's named socket (AF_UNIX, SOCK_STREAM, CLOEXEC). Unlike QEMU's driver we do
    /// not unlink the socket after connecting: the backend keeps a pool and reconnects.</summary>
    public static ProxyClient Connect(string socketPath)
    {
        ArgumentNullException.ThrowIfNull(socketPath);
        byte[] path = System.Text.Encoding.UTF8.GetBytes(socketPath);
        sockaddr_un addr = default;
        if (path.Length == 0 || path.Length >= sockaddr_un.sun_path_length)
            throw new ArgumentException($"socket path must be 1..{sockaddr_un.sun_path_length - 1} bytes", nameof(socketPath));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw new ProxyConnectionException($"socket failed: errno {errno}");
        addr.sun_family = AF_UNIX;
        byte* sunPath = (byte*)&addr + sockaddr_un.sun_path_offset;
        // SAFETY: path.Length < sun_path_length, and addr was zeroed, so the path stays NUL-terminated.
        path.AsSpan().CopyTo(new Span<byte>(sunPath, sockaddr_un.sun_path_length));
        while (true)
        {
            if (connect(fd, (sockaddr*)&addr, sizeof(sockaddr_un)) == 0) break;
            int err = errno;
            if (err == EINTR) continue;
            close(fd);
            throw new ProxyConnectionException($"connect to {socketPath} failed: errno {err}");
        }
        return new ProxyClient(new SafeFileHandle((IntPtr)fd, ownsHandle: true));
    }

    /// <summary>Takes ownership of an already connected stream socket (e.g. one end of a socketpair).</summary>
    public static ProxyClient FromFd(int fd)
    {
        if (fd < 0) throw new ArgumentOutOfRangeException(nameof(fd));
        return new ProxyClient(new SafeFileHandle((IntPtr)fd, ownsHandle: true));
    }

    /// <summary>
    /// True when the helper has closed its end, or sent something unasked, while this connection sat idle
    /// (the helper died or was restarted). The pool checks this before reuse, so the first requests after a
    /// helper restart do not fail on connections that were dead before they were sent.
    /// </summary>
    public bool PeerClosed()
    {
        if (IsBroken) return true;
        bool added = false;
        try
        {
            _socket.DangerousAddRef(ref added);
            var p = new pollfd { fd = (int)_socket.DangerousGetHandle(), events = (short)(POLLIN | POLLRDHUP) };
            // An idle connection has nothing to read: readable means EOF, reset, or a protocol violation.
            int ready = poll(&p, 1, 0);
            if (ready != 0)
            {
                _broken = true;
            }
            return _broken;
        }
        finally
        {
            if (added) _socket.DangerousRelease();
        }
    }

    public void Dispose()
    {
        _broken = true;
        _socket.Dispose();
    }

    public int Open(ReadOnlySpan<byte> path, int flags, out SafeFileHandle? fd)
    {
        fd = null;
        int err = CheckPath(path);
        if (err != 0) return err;
        return SendFdRequest(ProxyRequestEncoder.Open(_send, path, flags), out fd);
    }

    public int Create(ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid, out SafeFileHandle? fd)
    {
        fd = null;
        int err = CheckPath(path);
        if (err != 0) return err;
        if (!RootWithGroup(uid, gid))
            return SendFdRequest(ProxyRequestEncoder.Create(_send, path, flags, mode, uid, gid), out fd);
        int r = SendFdRequest(ProxyRequestEncoder.Create(_send, path, flags, mode, 0, 0), out fd);
        if (r >= 0) GiveGroup(path, gid);
        return r;
    }

    /// <summary>
    /// A create-type request as uid 0 with a gid other than 0 (root creating in a setgid directory, or root with
    /// another primary group) is sent as 0:0 and followed by T_CHOWN to 0:gid. QEMU 7.2's helper cannot take
    /// it: its setugid() drops the main thread's effective capabilities to DAC_OVERRIDE whenever uid or gid is
    /// not 0, and resetugid() only restores them through the euid change, which a uid-0 request never makes.
    /// The next create with a gid other than 0 then fails setresgid() in that thread alone, glibc's setxid
    /// broadcast sees threads disagree, and the helper aborts (seen with bookworm's 7.2.22). Root needs neither
    /// id for the permission checks (DAC_OVERRIDE), and the final owner is the same: 0 and the requested gid,
    /// which the Linux client already sets to a setgid directory's group (v9fs_get_fsgid_for_create).
    /// </summary>
    private static bool RootWithGroup(uint uid, uint gid) => uid == 0 && gid != 0;

    /// <summary>The T_CHOWN half of <see cref="RootWithGroup"/>. Best effort: the object exists, and the only
    /// way the chown fails is that the path changed meanwhile (a rename by someone else), which the caller
    /// could not tell from a plain create either.</summary>
    private void GiveGroup(ReadOnlySpan<byte> path, uint gid) => Chown(path, 0, gid);

    public int Mknod(ReadOnlySpan<byte> path, uint mode, ulong rdev, uint uid, uint gid)
    {
        int err = CheckPath(path);
        if (err != 0) return err;
        if (!RootWithGroup(uid, gid)) return StatusRequest(ProxyRequestEncoder.Mknod(_send, path, mode, rdev, uid, gid));
        int r = StatusRequest(ProxyRequestEncoder.Mknod(_send, path, mode, rdev, 0, 0));
        if (r >= 0) GiveGroup(path, gid);
        return r;
    }

    public int Mkdir(ReadOnlySpan<byte> path, uint mode, uint uid, uint gid)
    {
        int err = CheckPath(path);
        if (err != 0) return err;
        if (!RootWithGroup(uid, gid)) return StatusRequest(ProxyRequestEncoder.Mkdir(_send, path, mode, uid, gid));
        int r = StatusRequest(ProxyRequestEncoder.Mkdir(_send, path, mode, 0, 0));
        if (r >= 0) GiveGroup(path, gid);
        return r;
    }

    public int Symlink(ReadOnlySpan<byte> target, ReadOnlySpan<byte> linkPath, uint uid, uint gid)
    {
        int err = CheckPath(target, allowEmpty: false);
        if (err == 0) err = CheckPath(linkPath);
        if (err != 0) return err;
        if (!RootWithGroup(uid, gid)) return StatusRequest(ProxyRequestEncoder.Symlink(_send, target, linkPath, uid, gid));
        int r = StatusRequest(ProxyRequestEncoder.Symlink(_send, target, linkPath, 0, 0));
        if (r >= 0) GiveGroup(linkPath, gid);
        return r;
    }

    public int Link(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath) => TwoPaths(ProxyRequestType.Link, oldPath, newPath);

    public int Rename(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath) => TwoPaths(ProxyRequestType.Rename, oldPath, newPath);

    public int Lstat(ReadOnlySpan<byte> path, out ProxyStat stat)
    {
        stat = default;
        int err = CheckPath(path);
        if (err != 0) return err;
        int r = ResponseRequest(ProxyRequestEncoder.PathOnly(_send, ProxyRequestType.Lstat, path), out var body);
        if (r < 0) return r;
        stat = Decode(body, static b => ProxyReplyDecoder.Stat(b));
        return 0;
    }

    public int Statfs(ReadOnlySpan<byte> path, out ProxyStatFs stat)
    {
        stat = default;
        int err = CheckPath(path);
        if (err != 0) return err;
        int r = ResponseRequest(ProxyRequestEncoder.PathOnly(_send, ProxyRequestType.Statfs, path), out var body);
        if (r < 0) return r;
        stat = Decode(body, static b => ProxyReplyDecoder.StatFs(b));
        return 0;
    }

    /// <summary>Reads the link target into <paramref name="buffer"/> and returns its length, truncated to the
    /// buffer like readlink(2). The helper reads at most size-1 bytes (virtfs-proxy-helper.c do_readlink), so we
    /// ask for one more than the buffer holds.</summary>
    public int Readlink(ReadOnlySpan<byte> path, Span<byte> buffer)
    {
        int err = CheckPath(path);
        if (err != 0) return err;
        if (buffer.IsEmpty) return -Errno.EINVAL;
        int ask = Math.Min(buffer.Length, ProxyLimits.MaxReplyStringLength) + 1;
        int r = ResponseRequest(ProxyRequestEncoder.PathInt(_send, ProxyRequestType.Readlink, path, ask), out var body);
        if (r < 0) return r;
        var target = DecodeString(body, ask);
        int n = Math.Min(target.Length, buffer.Length);
        target[..n].CopyTo(buffer);
        return n;
    }

    public int Chmod(ReadOnlySpan<byte> path, uint mode)
    {
        int err = CheckPath(path);
        return err != 0 ? err : StatusRequest(ProxyRequestEncoder.PathInt(_send, ProxyRequestType.Chmod, path, unchecked((int)mode)));
    }

    /// <summary>lchown on the helper; uint.MaxValue (-1) leaves that id unchanged.</summary>
    public int Chown(ReadOnlySpan<byte> path, uint uid, uint gid)
    {
        int err = CheckPath(path);
        return err != 0 ? err : StatusRequest(ProxyRequestEncoder.Chown(_send, path, uid, gid));
    }

    public int Truncate(ReadOnlySpan<byte> path, long size)
    {
        int err = CheckPath(path);
        if (err != 0) return err;
        if (size < 0) return -Errno.EINVAL;
        return StatusRequest(ProxyRequestEncoder.Truncate(_send, path, size));
    }

    /// <summary>utimensat(AT_SYMLINK_NOFOLLOW) on the helper; nsec may be UTIME_NOW or UTIME_OMIT.</summary>
    public int Utime(ReadOnlySpan<byte> path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec)
    {
        int err = CheckPath(path);
        return err != 0 ? err : StatusRequest(ProxyRequestEncoder.Utime(_send, path, atimeSec, atimeNsec, mtimeSec, mtimeNsec));
    }

    /// <summary>remove(3): a file or an empty directory.</summary>
    public int Remove(ReadOnlySpan<byte> path)
    {
        int err = CheckPath(path);
        return err != 0 ? err : StatusRequest(ProxyRequestEncoder.PathOnly(_send, ProxyRequestType.Remove, path));
    }

    /// <summary>lgetxattr. An empty <paramref name="value"/> asks for the size (answered as a status); otherwise
    /// the value is copied and its length returned (ERANGE if it does not fit).</summary>
    public int GetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, Span<byte> value)
    {
        int err = CheckPath(path);
        if (err == 0) err = CheckName(name);
        if (err != 0) return err;
        int size = Math.Min(value.Length, ProxyLimits.MaxReplyStringLength);
        int length = ProxyRequestEncoder.GetXattr(_send, size, path, name);
        return size == 0 ? StatusRequest(length) : StringInto(length, value[..size]);
    }

    /// <summary>llistxattr; an empty <paramref name="list"/> asks for the size.</summary>
    public int ListXattr(ReadOnlySpan<byte> path, Span<byte> list)
    {
        int err = CheckPath(path);
        if (err != 0) return err;
        int size = Math.Min(list.Length, ProxyLimits.MaxReplyStringLength);
        int length = ProxyRequestEncoder.ListXattr(_send, size, path);
        return size == 0 ? StatusRequest(length) : StringInto(length, list[..size]);
    }

    public int SetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags)
    {
        int err = CheckPath(path);
        if (err == 0) err = CheckName(name);
        if (err != 0) return err;
        int length = ProxyRequestEncoder.SetXattr(_send, path, name, value, flags);
        return length < 0 ? -Errno.E2BIG : StatusRequest(length);
    }

    public int RemoveXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name)
    {
        int err = CheckPath(path);
        if (err == 0) err = CheckName(name);
        return err != 0 ? err : StatusRequest(ProxyRequestEncoder.TwoStrings(_send, ProxyRequestType.RemoveXattr, path, name));
    }

    /// <summary>FS_IOC_GETVERSION (inode generation); helpers on filesystems without it answer 0 or ENOTTY.</summary>
    public int GetVersion(ReadOnlySpan<byte> path, out ulong version)
    {
        version = 0;
        int err = CheckPath(path);
        if (err != 0) return err;
        int r = ResponseRequest(ProxyRequestEncoder.PathOnly(_send, ProxyRequestType.GetVersion, path), out var body);
        if (r < 0) return r;
        version = Decode(body, static b => ProxyReplyDecoder.Version(b));
        return 0;
    }

    // ---- plumbing ----

    private int TwoPaths(ProxyRequestType type, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int err = CheckPath(a);
        if (err == 0) err = CheckPath(b);
        return err != 0 ? err : StatusRequest(ProxyRequestEncoder.TwoStrings(_send, type, a, b));
    }

    /// <summary>Paths reach C strings on the helper: a NUL would silently cut them (EINVAL); longer than
    /// <see cref="ProxyLimits.MaxPathLength"/> is ENAMETOOLONG.</summary>
    private static int CheckPath(ReadOnlySpan<byte> path, bool allowEmpty = false)
    {
        if (path.IsEmpty && !allowEmpty) return -Errno.ENOENT;
        if (path.Length > ProxyLimits.MaxPathLength) return -Errno.ENAMETOOLONG;
        if (path.IndexOf((byte)0) >= 0) return -Errno.EINVAL;
        return 0;
    }

    /// <summary>XATTR_NAME_MAX is 255 (ERANGE above it, as the kernel answers).</summary>
    private static int CheckName(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty || name.Length > 255) return -Errno.ERANGE;
        if (name.IndexOf((byte)0) >= 0) return -Errno.EINVAL;
        return 0;
    }

    private void EnsureUsable()
    {
        if (IsBroken) throw new ProxyConnectionException("proxy connection is broken or closed");
    }

    private int SendFdRequest(int length, out SafeFileHandle? fd)
    {
        fd = null;
        if (length < 0) return -Errno.ENAMETOOLONG;
        return Transact(length, static (self, sock) =>
        {
            int r = FdReply.Receive(sock, out var received);
            self._pendingFd = received;
            return r;
        }, out fd);
    }

    private SafeFileHandle? _pendingFd;

    private int Transact(int length, Func<ProxyClient, SafeFileHandle, int> receive, out SafeFileHandle? fd)
    {
        fd = null;
        EnsureUsable();
        bool added = false;
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            _socket.DangerousAddRef(ref added);
            SocketIo.WriteAll(_socket, _send.AsSpan(0, length));
            int r = receive(this, _socket);
            fd = _pendingFd;
            _pendingFd = null;
            return r;
        }
        catch (ProxyConnectionException)
        {
            _broken = true;
            throw;
        }
        catch (ObjectDisposedException e)
        {
            _broken = true;
            throw new ProxyConnectionException("proxy connection closed", e);
        }
        finally
        {
            if (added) _socket.DangerousRelease();
            ProxyRoundTrips.Record(started);
        }
    }

    /// <summary>Header + int reply (v9fs_receive_status): the body must be exactly one int.</summary>
    private int StatusRequest(int length)
    {
        if (length < 0) return -Errno.ENAMETOOLONG;
        return Transact(length, static (self, sock) =>
        {
            var header = self.ReceiveMessage(sock, out int bodyLength);
            if (bodyLength != 4) self.Fail($"status reply with body size {bodyLength}");
            return self.DecodeStatus(header, bodyLength);
        }, out _);
    }

    private int _bodyLength;

    /// <summary>Header + payload reply (v9fs_receive_response); on success the body stays in _receive.</summary>
    private int ResponseRequest(int length, out ReadOnlySpan<byte> body)
    {
        body = default;
        if (length < 0) return -Errno.ENAMETOOLONG;
        int r = Transact(length, static (self, sock) =>
        {
            var header = self.ReceiveMessage(sock, out int bodyLength);
            self._bodyLength = bodyLength;
            if (header.Type == (uint)ProxyRequestType.Error) return self.DecodeStatus(header, bodyLength);
            return 0;
        }, out _);
        if (r < 0) return r;
        body = _receive.AsSpan(ProxyLimits.HeaderSize, _bodyLength);
        return 0;
    }

    private int StringInto(int length, Span<byte> destination)
    {
        int r = ResponseRequest(length, out var body);
        if (r < 0) return r;
        var s = DecodeString(body, destination.Length);
        s.CopyTo(destination);
        return s.Length;
    }

    private ProxyHeader ReceiveMessage(SafeFileHandle sock, out int bodyLength)
    {
        SocketIo.ReadExact(sock, _receive.AsSpan(0, ProxyLimits.HeaderSize), eofAllowedAtStart: false);
        var header = ProxyHeader.Read(_receive);
        if (header.Type != (uint)ProxyRequestType.Success && header.Type != (uint)ProxyRequestType.Error)
            Fail($"reply type {header.Type} is neither T_SUCCESS nor T_ERROR");
        if (header.Size > ProxyLimits.MaxBodySize) Fail($"reply size {header.Size} exceeds PROXY_MAX_IO_SZ");
        bodyLength = (int)header.Size;
        SocketIo.ReadExact(sock, _receive.AsSpan(ProxyLimits.HeaderSize, bodyLength), eofAllowedAtStart: false);
        return header;
    }

    private int DecodeStatus(ProxyHeader header, int bodyLength)
    {
        try
        {
            return ProxyReplyDecoder.Status(header, _receive.AsSpan(ProxyLimits.HeaderSize, bodyLength));
        }
        catch (ProxyProtocolException e)
        {
            _broken = true;
            throw new ProxyConnectionException("malformed reply: " + e.Message, e);
        }
    }

    private T Decode<T>(ReadOnlySpan<byte> body, ProxyDecode<T> decode)
    {
        try
        {
            return decode(body);
        }
        catch (ProxyProtocolException e)
        {
            _broken = true;
            throw new ProxyConnectionException("malformed reply: " + e.Message, e);
        }
    }

    private delegate T ProxyDecode<T>(ReadOnlySpan<byte> body);

    private ReadOnlySpan<byte> DecodeString(ReadOnlySpan<byte> body, int maxLength)
    {
        try
        {
            return ProxyReplyDecoder.String(body, maxLength);
        }
        catch (ProxyProtocolException e)
        {
            _broken = true;
            throw new ProxyConnectionException("malformed reply: " + e.Message, e);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Fail(string message)
    {
        _broken = true;
        throw new ProxyConnectionException("malformed reply: " + message);
    }
}

using Microsoft.Win32.SafeHandles;
using VirtFs.Helper.Interop;
using VirtFs.ProxyFs;
using VirtFs.ProxyFs.Protocol;
using VirtFs.ProxyFs.Transport;

namespace VirtFs.Helper;

/// <summary>
/// Serves one client socket: read a header, bound its size, read the body, decode it completely, run the
/// operation, reply. A message outside the protocol (size above PROXY_MAX_IO_SZ, unknown type, a body that does
/// not match its format, a string longer than its message) is logged and ends this connection only; since the
/// whole body is decoded before any syscall, nothing is half-applied.
/// </summary>
internal sealed unsafe class Connection
{
    private readonly SafeFileHandle _handle;
    private readonly string _name;
    private readonly int _timeoutMs;
    private readonly byte[] _request = new byte[ProxyLimits.MaxMessageSize];
    private readonly byte[] _reply = new byte[ProxyLimits.MaxMessageSize];
    private readonly Operations _ops;
    private long _lastActivity = Environment.TickCount64;
    private volatile bool _evicted;

    /// <summary>Takes ownership of <paramref name="socket"/>. A request must arrive whole within
    /// <paramref name="timeoutSeconds"/> of its first byte, and each reply write may block that long.</summary>
    public Connection(SafeFileHandle socket, string name, bool getVersionSupported, int timeoutSeconds, XattrPolicy xattrs)
    {
        _handle = socket;
        _name = name;
        _timeoutMs = checked(timeoutSeconds * 1000);
        _ops = new Operations(getVersionSupported, xattrs);
    }

    public string Name => _name;

    /// <summary>When the last request was answered (or the connection accepted), Environment.TickCount64.</summary>
    public long LastActivity => Volatile.Read(ref _lastActivity);

    public bool Evicted => _evicted;

    /// <summary>Ends the connection from another thread: shutdown wakes its thread with EOF. The SafeHandle's
    /// reference keeps the fd from being closed (and its number reused) during the call.</summary>
    public void Evict()
    {
        _evicted = true;
        try
        {
            using var socket = new FdUse(_handle);
            Tmds.Linux.LibC.shutdown(socket.Fd, SocketOptions.SHUT_RDWR);
        }
        catch (ObjectDisposedException)
        {
            // already closed by its own thread
        }
    }

    /// <summary>Runs until the peer closes or breaks the protocol. Never throws.</summary>
    public void Run()
    {
        try
        {
            RunRequests();
        }
        finally
        {
            _handle.Dispose();
        }
    }

    private void RunRequests()
    {
        try
        {
            // The reference held for the whole loop keeps the number valid for poll/recv below.
            using var socket = new FdUse(_handle);
            SetSendTimeout(socket.Fd);
            while (true)
            {
                long deadline = NoDeadline;
                if (!Receive(socket.Fd, _request.AsSpan(0, ProxyLimits.HeaderSize), ref deadline, eofAllowedAtStart: true))
                {
                    Log.Info(_evicted ? $"{_name}: evicted" : $"{_name}: closed by peer");
                    return;
                }
                var header = ProxyHeader.Read(_request);
                header.CheckSize();
                if (!ProxyRequestTypes.IsRequest(header.Type))
                    throw new ProxyProtocolException($"unknown request type {header.Type}");
                int size = (int)header.Size;
                Receive(socket.Fd, _request.AsSpan(ProxyLimits.HeaderSize, size), ref deadline, eofAllowedAtStart: false);
                Dispatch((ProxyRequestType)header.Type, _request.AsSpan(ProxyLimits.HeaderSize, size));
                Volatile.Write(ref _lastActivity, Environment.TickCount64);
            }
        }
        catch (ProxyProtocolException e)
        {
            Log.Error($"{_name}: protocol violation, closing the connection: {e.Message}");
        }
        catch (ProxyConnectionException e)
        {
            Log.Error(_evicted ? $"{_name}: evicted ({e.Message})" : $"{_name}: {e.Message}");
        }
        catch (Exception e)
        {
            Log.Error($"{_name}: internal error, closing the connection: {e}");
        }
    }

    private const long NoDeadline = long.MaxValue;

    /// <summary>
    /// Fills <paramref name="buffer"/>. Attack stopped: a peer that sends part of a request and stops used to hold
    /// this thread (and a connection slot) forever. The wait for the first byte of a request is unbounded (an idle
    /// pooled connection is normal); from that byte on, the whole request must arrive by
    /// <paramref name="deadline"/> (set here to first byte + timeout), or the connection ends. False on a clean
    /// EOF before the first byte when <paramref name="eofAllowedAtStart"/>.
    /// </summary>
    private bool Receive(int socket, Span<byte> buffer, ref long deadline, bool eofAllowedAtStart)
    {
        int done = 0;
        // The body comes in the same send as its header, so it is nearly always here already: read before polling
        // (one syscall fewer per request). The wait for a request's first byte polls first.
        bool readFirst = !eofAllowedAtStart;
        // SAFETY: buffer is pinned for the loop; every pointer below is p + done with done < buffer.Length.
        fixed (byte* p = buffer)
        {
            while (done < buffer.Length)
            {
                if (!readFirst)
                {
                    int waitMs = deadline == NoDeadline ? -1
                        : (int)Math.Clamp(deadline - Environment.TickCount64, 0, int.MaxValue);
                    var pfd = new Tmds.Linux.pollfd { fd = socket, events = (short)Tmds.Linux.LibC.POLLIN };
                    // SAFETY: pfd is a local that outlives the call.
                    int ready = Tmds.Linux.LibC.poll(&pfd, 1, waitMs);
                    if (ready == 0)
                        throw new ProxyConnectionException($"request not complete {_timeoutMs / 1000} s after its first byte");
                    if (ready < 0)
                    {
                        int e = Tmds.Linux.LibC.errno;
                        if (e == Tmds.Linux.LibC.EINTR) continue;
                        throw new ProxyConnectionException($"poll failed: errno {e}");
                    }
                }
                readFirst = false;
                // SAFETY: p + done .. p + buffer.Length lies inside the pinned span.
                long n = Tmds.Linux.LibC.recv(socket, p + done, (Tmds.Linux.size_t)(buffer.Length - done), Tmds.Linux.LibC.MSG_DONTWAIT);
                if (n > 0)
                {
                    done += (int)n;
                    if (deadline == NoDeadline) deadline = Environment.TickCount64 + _timeoutMs;
                    continue;
                }
                if (n == 0)
                {
                    if (done == 0 && eofAllowedAtStart && deadline == NoDeadline) return false;
                    throw new ProxyConnectionException("peer closed the connection mid-message");
                }
                int err = Tmds.Linux.LibC.errno;
                if (err == Tmds.Linux.LibC.EINTR || err == Tmds.Linux.LibC.EAGAIN) continue;
                throw new ProxyConnectionException($"recv failed: errno {err}");
            }
        }
        return true;
    }

    /// <summary>A peer that stops reading replies would block our writes forever: each send gives up after the
    /// timeout (SO_SNDTIMEO), which ends the connection.</summary>
    private void SetSendTimeout(int socket)
    {
        var tv = new SocketOptions.TimeVal { Seconds = _timeoutMs / 1000 };
        // SAFETY: tv is a local; its size is passed.
        Tmds.Linux.LibC.setsockopt(socket, SocketOptions.SOL_SOCKET, SocketOptions.SO_SNDTIMEO, &tv, sizeof(SocketOptions.TimeVal));
    }

    private void Dispatch(ProxyRequestType type, ReadOnlySpan<byte> body)
    {
        if (ReadOnlyExport.Enabled && type != ProxyRequestType.Open && ReadOnlyExport.Refuses(type, 0))
        {
            // Decoded first, and dropped: a malformed change ends the connection on a read-only export too,
            // instead of getting an answer as if it were a request.
            switch (type)
            {
                case ProxyRequestType.Create: CreateRequest.Decode(body); break;
                case ProxyRequestType.Mknod or ProxyRequestType.Mkdir or ProxyRequestType.Symlink:
                    CreateOtherRequest.Decode(type, body);
                    break;
                case ProxyRequestType.SetXattr: SetXattrRequest.Decode(body); break;
                default: PathRequest.Decode(type, body); break;
            }
            // T_CREATE answers like T_OPEN (an fd reply); every other change answers a status.
            if (type == ProxyRequestType.Create)
            {
                SendFd(-Errno.EROFS, null);
                return;
            }
            Status(-Errno.EROFS);
            return;
        }
        switch (type)
        {
            case ProxyRequestType.Open:
            {
                var req = OpenRequest.Decode(body);
                if (ReadOnlyExport.Refuses(type, req.Flags))
                {
                    SendFd(-Errno.EROFS, null);
                    break;
                }
                SendFd(_ops.Open(req, out var fd), fd);
                break;
            }
            case ProxyRequestType.Create:
            {
                var req = CreateRequest.Decode(body);
                SendFd(_ops.Create(req, out var fd), fd);
                break;
            }
            case ProxyRequestType.Mknod:
            case ProxyRequestType.Mkdir:
            case ProxyRequestType.Symlink:
                Status(_ops.CreateOther(type, CreateOtherRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Link:
                Status(_ops.Link(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Rename:
                Status(_ops.Rename(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Chmod:
                Status(_ops.Chmod(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Chown:
                Status(_ops.Chown(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Truncate:
                Status(_ops.Truncate(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Utime:
                Status(_ops.Utime(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Remove:
                Status(_ops.Remove(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.RemoveXattr:
                Status(_ops.RemoveXattr(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.SetXattr:
                Status(_ops.SetXattr(SetXattrRequest.Decode(body)));
                break;
            case ProxyRequestType.Lstat:
            {
                int r = _ops.Lstat(PathRequest.Decode(type, body), out var st);
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r) : ProxyReplyEncoder.Stat(_reply, st));
                break;
            }
            case ProxyRequestType.Statfs:
            {
                int r = _ops.Statfs(PathRequest.Decode(type, body), out var st);
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r) : ProxyReplyEncoder.StatFs(_reply, st));
                break;
            }
            case ProxyRequestType.Readlink:
            {
                int r = _ops.Readlink(PathRequest.Decode(type, body));
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r) : ProxyReplyEncoder.String(_reply, _ops.Data(r)));
                break;
            }
            case ProxyRequestType.GetXattr:
            case ProxyRequestType.ListXattr:
            {
                var req = GetXattrRequest.Decode(type, body);
                int r = _ops.GetXattr(type, req);
                // do_getxattr: size 0 answers the size as an int, otherwise the bytes as a string.
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r)
                    : req.Size == 0 ? ProxyReplyEncoder.Size(_reply, r)
                    : ProxyReplyEncoder.String(_reply, _ops.Data(r)));
                break;
            }
            case ProxyRequestType.GetVersion:
            {
                int r = _ops.GetVersion(PathRequest.Decode(type, body), out ulong v);
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r) : ProxyReplyEncoder.Version(_reply, v));
                break;
            }
            default:
                throw new ProxyProtocolException($"unknown request type {(uint)type}");
        }
    }

    private void Status(int status) => Send(ProxyReplyEncoder.Status(_reply, status));

    private void Send(int length) => SocketIo.WriteAll(_handle, _reply.AsSpan(0, length));

    /// <summary>send_fd: the fd goes over SCM_RIGHTS and our copy is closed right after.</summary>
    private void SendFd(int status, SafeFileHandle? fd)
    {
        using (fd)
        {
            FdReply.Send(_handle, status, status < 0 ? null : fd);
        }
    }
}

using System.Runtime.InteropServices;
using Tmds.Linux;
using VirtFs.Interop;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>
/// Moves vhost-user messages over a connected unix stream socket: header + payload in, SCM_RIGHTS fds collected
/// with MSG_CMSG_CLOEXEC and capped (MSG_CTRUNC is a violation). Knows nothing of message meanings.
/// A stop eventfd wakes a blocked receive.
/// </summary>
internal sealed class MessageChannel : IDisposable
{
    private readonly FdHandle _socket;
    private readonly FdHandle _stop;

    public MessageChannel(FdHandle socket, FdHandle stop)
    {
        _socket = socket;
        _stop = stop;
    }

    /// <summary>
    /// Receives exactly <paramref name="buffer"/>.Length bytes, adding any fds to <paramref name="fds"/>.
    /// Returns false on orderly EOF before the first byte or on stop.
    /// </summary>
    public unsafe bool ReceiveExactly(Span<byte> buffer, ReceivedFds fds, bool eofAllowed)
    {
        int done = 0;
        int controlLength = ScmRights.Space(sizeof(int) * VhostUserLimits.MaxFds);
        byte* control = stackalloc byte[controlLength];
        Span<int> arrived = stackalloc int[VhostUserLimits.MaxFds];
        while (done < buffer.Length)
        {
            if (!WaitReadable())
            {
                return false;
            }
            fixed (byte* p = buffer)
            {
                iovec iov = default;
                iov.iov_base = p + done;
                iov.iov_len = buffer.Length - done;
                msghdr msg = default;
                msg.msg_iov = &iov;
                msg.msg_iovlen = 1;
                msg.msg_control = control;
                msg.msg_controllen = controlLength;
                // SAFETY: iov and control point to live buffers of the stated lengths for the duration of the call.
                long n = recvmsg(_socket.Fd, &msg, MSG_CMSG_CLOEXEC);
                if (n < 0)
                {
                    int e = errno;
                    if (e == EINTR || e == EAGAIN)
                    {
                        continue;
                    }
                    throw new VhostUserProtocolException(VhostUserError.ReceiveFailed, $"recvmsg failed: errno {e}");
                }
                // Collect fds first so that every fd that arrived is owned (and closed) even if we then bail out.
                // Other control messages are ignored, as before: the front-end sends only SCM_RIGHTS.
                int count = ScmRights.TakeFds(control, (int)(uint)msg.msg_controllen, arrived, out int surplus, out _);
                bool tooMany = surplus > 0;
                for (int i = 0; i < count; i++)
                {
                    tooMany |= !fds.Add(arrived[i]);
                }
                if ((msg.msg_flags & MSG_CTRUNC) != 0 || tooMany)
                {
                    throw new VhostUserProtocolException(VhostUserError.ControlDataTruncated, "more fds than any message may carry");
                }
                if (n == 0)
                {
                    if (done == 0 && eofAllowed)
                    {
                        return false;
                    }
                    throw new VhostUserProtocolException(VhostUserError.ConnectionClosed, "connection closed mid-message");
                }
                done += (int)n;
            }
        }
        return true;
    }

    private unsafe bool WaitReadable()
    {
        pollfd* p = stackalloc pollfd[2];
        p[0].fd = _socket.Fd;
        p[0].events = POLLIN;
        p[1].fd = _stop.Fd;
        p[1].events = POLLIN;
        while (true)
        {
            p[0].revents = 0;
            p[1].revents = 0;
            // SAFETY: two pollfd structs on the stack.
            int r = poll(p, 2, -1);
            if (r < 0)
            {
                if (errno == EINTR)
                {
                    continue;
                }
                throw new VhostUserProtocolException(VhostUserError.ReceiveFailed, $"poll failed: errno {errno}");
            }
            if (p[1].revents != 0)
            {
                StopRequested = true;
                return false;
            }
            if (p[0].revents != 0)
            {
                // POLLHUP/POLLERR also land here: recvmsg then reports EOF or the error.
                return true;
            }
        }
    }

    /// <summary>True once a receive ended because the server was told to stop (SIGTERM), not because the
    /// front-end went away: the front-end is still there to read the replies of requests in flight.</summary>
    public bool StopRequested { get; private set; }

    /// <summary>Sends header + payload in one go (no fds: the backend never sends any).</summary>
    public unsafe void Send(ReadOnlySpan<byte> message)
    {
        int done = 0;
        fixed (byte* p = message)
        {
            while (done < message.Length)
            {
                // SAFETY: p + done .. p + Length is inside the pinned span.
                long n = send(_socket.Fd, p + done, message.Length - done, MSG_NOSIGNAL);
                if (n < 0)
                {
                    if (errno == EINTR)
                    {
                        continue;
                    }
                    throw new VhostUserProtocolException(VhostUserError.SendFailed, $"send failed: errno {errno}");
                }
                done += (int)n;
            }
        }
    }

    public void Dispose() => _socket.Dispose();
}

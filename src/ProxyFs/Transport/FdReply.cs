using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.Interop;
using VirtFs.ProxyFs.Protocol;
using static Tmds.Linux.LibC;

namespace VirtFs.ProxyFs.Transport;

/// <summary>
/// The open/create answer (virtfs-proxy-helper.c send_fd, 9p-proxy.c v9fs_receivefd): no header, one host-endian
/// int. A negative value is -errno and comes alone; V9FS_FD_VALID (INT_MAX) comes with exactly one fd as
/// SCM_RIGHTS ancillary data.
/// </summary>
public static unsafe class FdReply
{
    /// <summary>Sends -errno (status &lt; 0) or V9FS_FD_VALID with <paramref name="fd"/>.</summary>
    public static void Send(SafeHandle socketHandle, int status, SafeFileHandle? fd)
    {
        using var use = new FdUse(socketHandle);
        int socket = use.Fd;
        int data = status < 0 ? status : ProxyLimits.FdValid;
        if (status >= 0 && fd is null) throw new ArgumentNullException(nameof(fd));
        int cmsgSpace = ScmRights.Space(sizeof(int));
        byte* control = stackalloc byte[cmsgSpace];
        new Span<byte>(control, cmsgSpace).Clear();
        iovec iov = default;
        iov.iov_base = &data;
        iov.iov_len = sizeof(int);
        msghdr msg = default;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        bool added = false;
        try
        {
            if (status >= 0)
            {
                fd!.DangerousAddRef(ref added);
                msg.msg_control = control;
                msg.msg_controllen = cmsgSpace;
                cmsghdr* c = (cmsghdr*)control;
                c->cmsg_len = ScmRights.Len(sizeof(int)); // not Tmds.LibC's CMSG_LEN: see ScmRights
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                // SAFETY: CMSG_DATA points inside control, which has CMSG_SPACE(sizeof(int)) bytes.
                *(int*)ScmRights.Data(c) = (int)fd.DangerousGetHandle();
            }
            while (true)
            {
                long n = sendmsg(socket, &msg, MSG_NOSIGNAL);
                if (n == sizeof(int)) return;
                if (n >= 0) throw new ProxyConnectionException("short sendmsg of the fd reply");
                int err = errno;
                if (err == EINTR) continue;
                throw new ProxyConnectionException($"sendmsg failed: errno {err}");
            }
        }
        finally
        {
            if (added) fd!.DangerousRelease();
        }
    }

    /// <summary>
    /// Receives the answer. Returns &gt;= 0 with <paramref name="fd"/> set, or a negative errno (fd null).
    /// MSG_CMSG_CLOEXEC so the fd never leaks into a child; at most <see cref="ProxyLimits.MaxReceivedFds"/>
    /// fds fit the control buffer. Extra fds, truncated control data that did deliver fds, an fd with an
    /// error value, or a value outside the protocol are malformed: every received fd is closed and we throw.
    /// </summary>
    public static int Receive(SafeHandle socketHandle, out SafeFileHandle? fd)
    {
        using var use = new FdUse(socketHandle);
        int socket = use.Fd;
        fd = null;
        int data = 0;
        int cmsgSpace = ScmRights.Space(sizeof(int) * ProxyLimits.MaxReceivedFds);
        byte* control = stackalloc byte[cmsgSpace];
        new Span<byte>(control, cmsgSpace).Clear();
        iovec iov = default;
        iov.iov_base = &data;
        iov.iov_len = sizeof(int);
        msghdr msg = default;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = cmsgSpace;
        long n;
        while (true)
        {
            n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
            if (n >= 0) break;
            int err = errno;
            if (err == EINTR) continue;
            throw new ProxyConnectionException($"recvmsg failed: errno {err}");
        }
        if (n == 0) throw new ProxyConnectionException("peer closed the connection before the open reply");

        // Take ownership of every fd first, so any error path closes them.
        Span<int> fds = stackalloc int[ProxyLimits.MaxReceivedFds];
        // Walked by ourselves, bounded by the length the kernel reported; surplus fds are closed there (the
        // buffer holds MaxReceivedFds, so more means MSG_CTRUNC, refused below).
        int count = ScmRights.TakeFds(control, (int)(uint)msg.msg_controllen, fds, out _, out bool foreignControl);
        bool truncated = (msg.msg_flags & MSG_CTRUNC) != 0;

        try
        {
            // A short read of the 4-byte int: the rest arrives without ancillary data.
            if (n < sizeof(int))
            {
                Span<byte> rest = new Span<byte>((byte*)&data + n, sizeof(int) - (int)n);
                SocketIo.ReadExact(socketHandle, rest, eofAllowedAtStart: false);
            }
            if (foreignControl) throw new ProxyConnectionException("unexpected ancillary data in the open reply");
            if (data != ProxyLimits.FdValid)
            {
                if (count > 0) throw new ProxyConnectionException("fd sent with an error reply");
                if (data >= 0 || data < -ProxyLimits.MaxErrno)
                    throw new ProxyConnectionException($"open reply value {data} is outside the protocol");
                return data;
            }
            if (count == 0)
            {
                // Sent but not received: the kernel could not install it (our fd table is full; it then sets
                // MSG_CTRUNC). The stream is still in step, so report it like 9p-proxy.c does.
                return truncated ? -Errno.EMFILE : -Errno.ENFILE;
            }
            if (truncated) throw new ProxyConnectionException("ancillary data truncated (too many fds)");
            if (count != 1) throw new ProxyConnectionException($"{count} fds in one open reply");
            fd = new SafeFileHandle((IntPtr)fds[0], ownsHandle: true);
            count = 0;
            return 0;
        }
        finally
        {
            for (int i = 0; i < count; i++) close(fds[i]);
        }
    }
}

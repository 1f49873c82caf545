using System.Runtime.InteropServices;
using Tmds.Linux;
using VirtFs.Interop;
using static Tmds.Linux.LibC;

namespace VirtFs.ProxyFs.Transport;

/// <summary>Blocking whole-buffer reads and writes on a stream socket (socket_read/socket_write in
/// virtfs-proxy-helper.c: retry on EINTR, EOF mid-message is an error). The socket stays referenced (so open,
/// and its number not reused) for the whole call.</summary>
public static unsafe class SocketIo
{
    /// <summary>Reads exactly buffer.Length bytes. Returns false on a clean EOF before the first byte
    /// (the peer closed between messages); throws on EOF mid-buffer or a socket error.</summary>
    public static bool ReadExact(SafeHandle socket, Span<byte> buffer, bool eofAllowedAtStart)
    {
        using var use = new FdUse(socket);
        int fd = use.Fd;
        int done = 0;
        fixed (byte* p = buffer)
        {
            while (done < buffer.Length)
            {
                // SAFETY: p + done .. p + buffer.Length lies inside the pinned span.
                long n = recv(fd, p + done, (size_t)(buffer.Length - done), 0);
                if (n > 0) { done += (int)n; continue; }
                if (n == 0)
                {
                    if (done == 0 && eofAllowedAtStart) return false;
                    throw new ProxyConnectionException("peer closed the connection mid-message");
                }
                int err = errno;
                if (err == EINTR) continue;
                throw new ProxyConnectionException($"recv failed: errno {err}");
            }
        }
        return true;
    }

    /// <summary>Writes the whole buffer (MSG_NOSIGNAL: a closed peer is an error, not a SIGPIPE).</summary>
    public static void WriteAll(SafeHandle socket, ReadOnlySpan<byte> buffer)
    {
        using var use = new FdUse(socket);
        int fd = use.Fd;
        int done = 0;
        fixed (byte* p = buffer)
        {
            while (done < buffer.Length)
            {
                // SAFETY: p + done .. p + buffer.Length lies inside the pinned span.
                long n = send(fd, p + done, (size_t)(buffer.Length - done), MSG_NOSIGNAL);
                if (n >= 0) { done += (int)n; continue; }
                int err = errno;
                if (err == EINTR) continue;
                throw new ProxyConnectionException($"send failed: errno {err}");
            }
        }
    }
}

using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

/// <summary>Socket options and structs (asm-generic/socket.h, x86_64) that Tmds.LibC 0.5.0 does not name.</summary>
internal static unsafe class SocketOptions
{
    public const int SOL_SOCKET = 1;
    public const int SO_PEERCRED = 17;
    public const int SO_SNDTIMEO = 21; // SO_SNDTIMEO_OLD: struct timeval with 64-bit fields on x86_64
    public const int SHUT_RDWR = 2;

    /// <summary>struct ucred: the peer's credentials when it connected.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct UCred
    {
        public int Pid;
        public uint Uid;
        public uint Gid;
    }

    /// <summary>getsockopt(SO_PEERCRED): for a connected socket, who connected; for a socketpair, who made it.
    /// 0 or -errno.</summary>
    public static int PeerCredentials(int socket, out UCred cred)
    {
        UCred c = default;
        Tmds.Linux.socklen_t length = sizeof(UCred);
        // SAFETY: c and length are locals that outlive the call; length is the struct's size.
        int r = Tmds.Linux.LibC.getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &c, &length);
        cred = c;
        return r < 0 ? -Tmds.Linux.LibC.errno : 0;
    }

    /// <summary>struct timeval.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TimeVal
    {
        public long Seconds;
        public long Microseconds;
    }
}

using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

/// <summary>Socket options and structs (asm-generic/socket.h, x86_64) that Tmds.LibC 0.5.0 does not name.</summary>
internal static class SocketOptions
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

    /// <summary>struct timeval.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TimeVal
    {
        public long Seconds;
        public long Microseconds;
    }
}

using System.Runtime.InteropServices;

namespace VirtFs.Common.Interop;

internal static unsafe partial class Sys
{
    public const int LOG_PID = 0x01;
    public const int LOG_NDELAY = 0x08;
    public const int LOG_DAEMON = 3 << 3;

    /// <summary>openlog(3); ident must stay alive for the process lifetime (syslog keeps the pointer).</summary>
    [LibraryImport("libc")]
    public static partial void openlog(byte* ident, int option, int facility);
}

using System.Runtime.InteropServices;

namespace VirtFs.Common.Interop;

internal static unsafe partial class Sys
{
    public const int LOG_CRIT = 2;
    public const int LOG_ERR = 3;
    public const int LOG_WARNING = 4;
    public const int LOG_INFO = 6;
    public const int LOG_DEBUG = 7;

    /// <summary>syslog(3) called as syslog(prio, "%s", msg): the message is never a format string. On x86_64 a
    /// variadic callee reads the extra pointer argument from the same register as a fixed one would use.</summary>
    [LibraryImport("libc")]
    public static partial void syslog(int priority, byte* format, byte* message);
}

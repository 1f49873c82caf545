using System.Runtime.InteropServices;
using System.Text;
using VirtFs.Common.Interop;

namespace VirtFs.Common;

/// <summary>syslog(3) for both executables: openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON), then one call per
/// line. LOG_NDELAY connects to /dev/log at once, while the process can still reach it (both confine themselves
/// later). Thread-safe (syslog(3) is).</summary>
public static unsafe class SyslogWriter
{
    public const int Error = Sys.LOG_ERR, Warning = Sys.LOG_WARNING, Info = Sys.LOG_INFO, Debug = Sys.LOG_DEBUG,
        Critical = Sys.LOG_CRIT;

    private static byte* s_ident;

    public static bool IsOpen => s_ident != null;

    public static void Open(string ident)
    {
        if (s_ident != null)
        {
            return;
        }
        // openlog keeps the ident pointer: give it memory that never moves or dies.
        byte[] bytes = Encoding.UTF8.GetBytes(ident + "\0");
        byte* memory = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(memory, bytes.Length));
        Sys.openlog(memory, Sys.LOG_PID | Sys.LOG_NDELAY, Sys.LOG_DAEMON);
        s_ident = memory;
    }

    public static void Write(int priority, string message)
    {
        int max = Encoding.UTF8.GetMaxByteCount(message.Length) + 1;
        Span<byte> buffer = max <= 1024 ? stackalloc byte[max] : new byte[max];
        int n = Encoding.UTF8.GetBytes(message, buffer);
        buffer[n] = 0;
        fixed (byte* text = buffer)
        fixed (byte* format = "%s\0"u8)
        {
            // SAFETY: both strings are NUL-terminated and pinned for the call.
            Sys.syslog(priority, format, text);
        }
    }
}

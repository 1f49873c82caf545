using System.Text;
using VirtFs.Helper.Interop;

namespace VirtFs.Helper;

/// <summary>The helper's only logger: syslog in daemon mode (as QEMU's helper: openlog(PROGNAME, LOG_PID,
/// LOG_DAEMON)), stderr with -n. Thread-safe (syslog(3) and Console.Error both are).</summary>
internal static unsafe class Log
{
    private static bool s_syslog;
    private static byte* s_ident;

    public static void UseSyslog()
    {
        // openlog keeps the ident pointer: give it memory that never moves or dies.
        byte[] ident = "virtfs-proxy-helper\0"u8.ToArray();
        s_ident = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)ident.Length);
        ident.CopyTo(new Span<byte>(s_ident, ident.Length));
        Native.openlog(s_ident, Native.LOG_PID, Native.LOG_DAEMON);
        s_syslog = true;
    }

    public static void Info(string message) => Write(Native.LOG_INFO, message);
    public static void Warn(string message) => Write(Native.LOG_WARNING, message);
    public static void Error(string message) => Write(Native.LOG_ERR, message);

    private static void Write(int priority, string message)
    {
        if (!s_syslog)
        {
            Console.Error.WriteLine(message);
            return;
        }
        int max = Encoding.UTF8.GetMaxByteCount(message.Length) + 1;
        Span<byte> buf = max <= 1024 ? stackalloc byte[max] : new byte[max];
        int n = Encoding.UTF8.GetBytes(message, buf);
        buf[n] = 0;
        fixed (byte* msg = buf)
        fixed (byte* fmt = "%s\0"u8)
        {
            // SAFETY: both strings are NUL-terminated and pinned for the call.
            Native.syslog(priority, fmt, msg);
        }
    }
}

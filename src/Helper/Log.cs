using VirtFs.Common;

namespace VirtFs.Helper;

/// <summary>The helper's only logger: syslog in daemon mode (as QEMU's helper: openlog(PROGNAME, LOG_PID,
/// LOG_DAEMON)), stderr with -n. Thread-safe (syslog(3) and Console.Error both are).</summary>
internal static class Log
{
    public static void UseSyslog() => SyslogWriter.Open("virtfs-proxy-helper");

    public static void Info(string message) => Write(SyslogWriter.Info, message);
    public static void Warn(string message) => Write(SyslogWriter.Warning, message);
    public static void Error(string message) => Write(SyslogWriter.Error, message);

    private static void Write(int priority, string message)
    {
        if (SyslogWriter.IsOpen)
        {
            SyslogWriter.Write(priority, message);
        }
        else
        {
            Console.Error.WriteLine(message);
        }
    }
}

using System.Runtime.InteropServices;

namespace VirtFs.DeviceBench.Interop;

/// <summary>clock_gettime(2) for CPU clocks (Tmds.LibC 0.5.0 has none).</summary>
internal static partial class Clock
{
    public const int ProcessCpuTime = 2; // CLOCK_PROCESS_CPUTIME_ID
    public const int ThreadCpuTime = 3;  // CLOCK_THREAD_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime", SetLastError = true)]
    private static partial int ClockGettime(int clock, out Timespec time);

    /// <summary>Nanoseconds of CPU used by this process or this thread so far.</summary>
    public static long CpuNanoseconds(int clock)
    {
        if (ClockGettime(clock, out Timespec t) != 0)
        {
            throw new InvalidOperationException($"clock_gettime({clock}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
        return t.Seconds * 1_000_000_000 + t.Nanoseconds;
    }
}

using System.Diagnostics;

namespace VirtFs.ProxyFs;

/// <summary>
/// Process-wide count and time of helper round trips (one request written, its reply read), for the backend's
/// metrics (VirtFs.Backend meter: virtfs.helper.round_trips, virtfs.helper.duration). Plain interlocked counters:
/// a few nanoseconds per round trip, nothing allocated; the meter reads them when someone collects.
/// </summary>
public static class ProxyRoundTrips
{
    private static long s_count;
    private static long s_ticks;

    /// <summary>Called with every finished round trip's length (Stopwatch ticks); null when nobody listens.</summary>
    public static Action<long>? Observer { get; set; }

    public static long Count => Volatile.Read(ref s_count);

    /// <summary>Total time spent in round trips, in Stopwatch ticks.</summary>
    public static long Ticks => Volatile.Read(ref s_ticks);

    internal static void Record(long started)
    {
        long elapsed = Stopwatch.GetTimestamp() - started;
        Interlocked.Increment(ref s_count);
        Interlocked.Add(ref s_ticks, elapsed);
        Observer?.Invoke(elapsed);
    }
}

using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Device;

/// <summary>
/// Per message type: how many requests, how long they waited for a worker and how long the server took.
/// Logged when the front-end stops the device, so a slow guest can be told apart from a slow backend
/// without a profiler. Lock-free counters; a few nanoseconds per request.
/// </summary>
internal sealed class RequestStatistics
{
    private readonly long[] _count = new long[256];
    private readonly long[] _waitTicks = new long[256];
    private readonly long[] _serviceTicks = new long[256];
    private readonly long[] _maxServiceTicks = new long[256];

    public void Record(byte type, long enqueued, long started, long finished)
    {
        Interlocked.Increment(ref _count[type]);
        Interlocked.Add(ref _waitTicks[type], started - enqueued);
        long service = finished - started;
        Interlocked.Add(ref _serviceTicks[type], service);
        long max;
        while (service > (max = Volatile.Read(ref _maxServiceTicks[type])) &&
               Interlocked.CompareExchange(ref _maxServiceTicks[type], service, max) != max)
        {
        }
    }

    /// <summary>Logs and resets the counters.</summary>
    public void Log(ILogger logger)
    {
        var text = new StringBuilder();
        for (int type = 0; type < 256; type++)
        {
            long count = Interlocked.Exchange(ref _count[type], 0);
            long wait = Interlocked.Exchange(ref _waitTicks[type], 0);
            long service = Interlocked.Exchange(ref _serviceTicks[type], 0);
            long max = Interlocked.Exchange(ref _maxServiceTicks[type], 0);
            if (count == 0)
            {
                continue;
            }
            text.Append(Enum.IsDefined((P9MessageType)type) ? ((P9MessageType)type).ToString() : $"type{type}")
                .Append($" n={count} wait={Ms(wait / count):0.000}ms service={Ms(service / count):0.000}ms max={Ms(max):0.0}ms; ");
        }
        if (text.Length > 0)
        {
            logger.LogInformation("9P requests: {Statistics}", text.ToString());
        }
    }

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}

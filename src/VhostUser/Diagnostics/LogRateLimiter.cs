using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace VirtFs.VhostUser.Diagnostics;

/// <summary>
/// Bounds one kind of log line a guest (or front-end) can trigger at will: at most <c>maxLines</c> per
/// interval, then silence, then one "N suppressed" line when the kind is next logged after the interval.
/// Without it a guest sending malformed requests in a loop writes to the host's log as fast as it can send
/// (issue 13, item 8). One instance per message kind, shared by every thread that logs that kind; the
/// common path (within the budget or suppressed) is a short lock and no allocation.
/// </summary>
public sealed class LogRateLimiter
{
    public const int DefaultMaxLines = 10;
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    private readonly string _kind;
    private readonly int _maxLines;
    private readonly long _intervalTicks;
    private readonly TimeProvider _time;
    private readonly Lock _sync = new();
    private long _windowStart;
    private int _lines;
    private long _suppressed;
    private bool _started;

    /// <param name="kind">Names the suppressed lines in the summary ("9P malformed requests").</param>
    public LogRateLimiter(string kind, int maxLines = DefaultMaxLines, TimeSpan? interval = null, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLines, 1);
        _kind = kind;
        _maxLines = maxLines;
        _time = time ?? TimeProvider.System;
        TimeSpan span = interval ?? DefaultInterval;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(span, TimeSpan.Zero, nameof(interval));
        _intervalTicks = (long)(span.TotalSeconds * _time.TimestampFrequency);
    }

    /// <summary>Whether the caller may log its line now. When a new interval starts after lines were
    /// suppressed, first writes one line saying how many, at <paramref name="level"/>.</summary>
    public bool ShouldLog(ILogger logger, LogLevel level)
    {
        long suppressed = 0;
        bool allowed;
        lock (_sync)
        {
            long now = _time.GetTimestamp();
            if (!_started || now - _windowStart >= _intervalTicks)
            {
                _started = true;
                _windowStart = now;
                _lines = 0;
                suppressed = _suppressed;
                _suppressed = 0;
            }
            allowed = _lines < _maxLines;
            if (allowed)
            {
                _lines++;
            }
            else
            {
                _suppressed++;
            }
        }
        if (suppressed > 0)
        {
            logger.Log(level, "{Kind}: {Suppressed} similar lines suppressed", _kind, suppressed);
        }
        return allowed;
    }

    /// <summary>Lines suppressed and not yet reported (for tests and statistics).</summary>
    public long Suppressed
    {
        get
        {
            lock (_sync)
            {
                return _suppressed;
            }
        }
    }
}

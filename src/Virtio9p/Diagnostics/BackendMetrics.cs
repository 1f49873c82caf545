using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using VirtFs.ProxyFs;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Diagnostics;

/// <summary>
/// The backend's metrics, as the System.Diagnostics.Metrics meter <see cref="MeterName"/> (read it from outside
/// with <c>dotnet-counters monitor -n vhost-user-9p --counters VirtFs.Backend</c>), and as text for SIGUSR1.
/// <para>
/// Cheap on the request path by construction: a request costs a few interlocked adds into fixed arrays, indexed
/// by 9P type and errno; the meter's counters are observable instruments that read those arrays only when a tool
/// collects, so the hot path allocates nothing and builds no tag lists. The two histograms record only while a
/// listener is enabled on them (their tag-less Record allocates nothing either).
/// </para>
/// </summary>
public sealed class BackendMetrics : IDisposable
{
    public const string MeterName = "VirtFs.Backend";

    /// <summary>errno values above this are counted under it (Linux has about 133).</summary>
    private const int MaxErrno = 255;

    private readonly Meter _meter = new(MeterName, ProgramVersionText());
    private readonly long[] _requests = new long[256];
    private readonly long[] _errors = new long[MaxErrno + 1];
    /// <summary>Request service time in power-of-two microsecond buckets: bucket b holds [2^(b-1), 2^b) µs.</summary>
    private readonly long[] _latencyBuckets = new long[32];
    private long _bytesRead;
    private long _bytesWritten;
    private long _inFlight;
    private long _serviceTicks;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _helperDuration;
    /// <summary>Tags built once: the observable callbacks hand them out without allocating strings.</summary>
    private static readonly KeyValuePair<string, object?>[] s_typeTags = BuildTypeTags();
    private static readonly KeyValuePair<string, object?>[] s_errnoTags = BuildErrnoTags();

    public BackendMetrics()
    {
        _meter.CreateObservableCounter("virtfs.requests", ObserveRequests, "{request}", "9P requests served, by type");
        _meter.CreateObservableCounter("virtfs.errors", ObserveErrors, "{reply}", "Rlerror replies, by errno");
        _meter.CreateObservableCounter("virtfs.bytes.read", () => Volatile.Read(ref _bytesRead), "By", "bytes read for the guest (Tread)");
        _meter.CreateObservableCounter("virtfs.bytes.written", () => Volatile.Read(ref _bytesWritten), "By", "bytes written for the guest (Twrite)");
        _meter.CreateObservableUpDownCounter("virtfs.requests.in_flight", () => Volatile.Read(ref _inFlight), "{request}",
            "requests taken from the ring and not yet answered");
        _meter.CreateObservableCounter("virtfs.helper.round_trips", () => ProxyRoundTrips.Count, "{round_trip}",
            "requests to virtfs-proxy-helper answered");
        _duration = _meter.CreateHistogram<double>("virtfs.request.duration", "ms", "time from a request's arrival to its reply");
        _helperDuration = _meter.CreateHistogram<double>("virtfs.helper.duration", "ms", "time of one helper round trip");
        ProxyRoundTrips.Observer = ticks =>
        {
            if (_helperDuration.Enabled)
            {
                _helperDuration.Record(Milliseconds(ticks));
            }
        };
    }

    public long InFlight => Volatile.Read(ref _inFlight);

    public long Requests(P9MessageType type) => Volatile.Read(ref _requests[(byte)type]);

    public long Errors(int errno) => Volatile.Read(ref _errors[Math.Clamp(errno, 0, MaxErrno)]);

    public long BytesRead => Volatile.Read(ref _bytesRead);

    public long BytesWritten => Volatile.Read(ref _bytesWritten);

    /// <summary>A request was taken from the ring.</summary>
    public void Started() => Interlocked.Increment(ref _inFlight);

    /// <summary>A request was answered: <paramref name="enqueued"/> and <paramref name="finished"/> are Stopwatch
    /// timestamps.</summary>
    public void Finished(byte type, long enqueued, long finished)
    {
        Interlocked.Decrement(ref _inFlight);
        Interlocked.Increment(ref _requests[type]);
        long ticks = finished - enqueued;
        Interlocked.Add(ref _serviceTicks, ticks);
        long micros = ticks * 1_000_000 / Stopwatch.Frequency;
        int bucket = micros <= 0 ? 0 : Math.Min(64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)micros), _latencyBuckets.Length - 1);
        Interlocked.Increment(ref _latencyBuckets[bucket]);
        if (_duration.Enabled)
        {
            _duration.Record(Milliseconds(ticks));
        }
    }

    public void Error(int errno) => Interlocked.Increment(ref _errors[Math.Clamp(errno, 0, MaxErrno)]);

    public void Read(int bytes) => Interlocked.Add(ref _bytesRead, bytes);

    public void Written(int bytes) => Interlocked.Add(ref _bytesWritten, bytes);

    private IEnumerable<Measurement<long>> ObserveRequests()
    {
        for (int type = 0; type < _requests.Length; type++)
        {
            long n = Volatile.Read(ref _requests[type]);
            if (n != 0)
            {
                yield return new Measurement<long>(n, s_typeTags[type]);
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveErrors()
    {
        for (int errno = 0; errno < _errors.Length; errno++)
        {
            long n = Volatile.Read(ref _errors[errno]);
            if (n != 0)
            {
                yield return new Measurement<long>(n, s_errnoTags[errno]);
            }
        }
    }

    /// <summary>Everything on a few lines, for SIGUSR1 and for people without dotnet-counters.</summary>
    public string Format()
    {
        var text = new StringBuilder();
        long total = 0;
        text.Append("requests:");
        for (int type = 0; type < _requests.Length; type++)
        {
            long n = Volatile.Read(ref _requests[type]);
            if (n != 0)
            {
                total += n;
                text.Append(' ').Append(s_typeTags[type].Value).Append('=').Append(n);
            }
        }
        text.Append(" total=").Append(total).Append('\n');
        text.Append("errors:");
        for (int errno = 0; errno < _errors.Length; errno++)
        {
            long n = Volatile.Read(ref _errors[errno]);
            if (n != 0)
            {
                text.Append(' ').Append(s_errnoTags[errno].Value).Append('=').Append(n);
            }
        }
        text.Append('\n');
        text.Append("bytes: read=").Append(BytesRead).Append(" written=").Append(BytesWritten)
            .Append(" in_flight=").Append(InFlight).Append('\n');
        double mean = total == 0 ? 0 : Milliseconds(Volatile.Read(ref _serviceTicks)) / total;
        text.Append("latency: mean=").Append(mean.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)).Append("ms");
        for (int b = 0; b < _latencyBuckets.Length; b++)
        {
            long n = Volatile.Read(ref _latencyBuckets[b]);
            if (n != 0)
            {
                text.Append(" <").Append(BucketLabel(b)).Append('=').Append(n);
            }
        }
        text.Append('\n');
        long trips = ProxyRoundTrips.Count;
        double helperMean = trips == 0 ? 0 : Milliseconds(ProxyRoundTrips.Ticks) / trips;
        text.Append("helper: round_trips=").Append(trips).Append(" mean=")
            .Append(helperMean.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)).Append("ms");
        return text.ToString();
    }

    private static string BucketLabel(int bucket)
    {
        long micros = 1L << bucket;
        return micros >= 1000 ? $"{micros / 1000}ms" : $"{micros}us";
    }

    private static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    private static KeyValuePair<string, object?>[] BuildTypeTags()
    {
        var tags = new KeyValuePair<string, object?>[256];
        for (int type = 0; type < tags.Length; type++)
        {
            string name = Enum.IsDefined((P9MessageType)type) ? ((P9MessageType)type).ToString() : $"type{type}";
            tags[type] = new KeyValuePair<string, object?>("type", name);
        }
        return tags;
    }

    private static KeyValuePair<string, object?>[] BuildErrnoTags()
    {
        var tags = new KeyValuePair<string, object?>[MaxErrno + 1];
        for (int errno = 0; errno < tags.Length; errno++)
        {
            tags[errno] = new KeyValuePair<string, object?>("errno", ErrnoName(errno));
        }
        return tags;
    }

    /// <summary>The names of the errno values the server answers most (Server/Errno.cs); others by number.</summary>
    private static string ErrnoName(int errno) => errno switch
    {
        1 => "EPERM", 2 => "ENOENT", 5 => "EIO", 7 => "E2BIG", 9 => "EBADF", 11 => "EAGAIN", 12 => "ENOMEM",
        13 => "EACCES", 16 => "EBUSY", 17 => "EEXIST", 18 => "EXDEV", 20 => "ENOTDIR", 21 => "EISDIR",
        22 => "EINVAL", 27 => "EFBIG", 28 => "ENOSPC", 30 => "EROFS", 34 => "ERANGE", 36 => "ENAMETOOLONG",
        37 => "ENOLCK", 38 => "ENOSYS", 39 => "ENOTEMPTY", 40 => "ELOOP", 61 => "ENODATA", 71 => "EPROTO",
        90 => "EMSGSIZE", 95 => "EOPNOTSUPP", 105 => "ENOBUFS",
        _ => errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string ProgramVersionText() => VirtFs.Common.ProgramVersion.Text;

    public void Dispose()
    {
        ProxyRoundTrips.Observer = null;
        _meter.Dispose();
    }
}

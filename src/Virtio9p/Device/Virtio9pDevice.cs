using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using VirtFs.VhostUser;
using VirtFs.VhostUser.Diagnostics;
using VirtFs.Virtio9p.Diagnostics;
using VirtFs.Virtio9p.Protocol;
using VirtFs.Virtio9p.Server;

namespace VirtFs.Virtio9p.Device;

/// <summary>
/// The virtio-9p device (device id 9, "9P transport" in the virtio 1.2 device ID table, which has no device
/// section for it: QEMU's hw/9pfs/virtio-9p-device.c and Linux's net/9p/trans_virtio.c are the reference):
/// feature MOUNT_TAG, config space
/// holding the tag, one request queue. The queue thread peeks at each request's header: what cannot block
/// (data I/O and getattr on open fids, clunk) it serves itself, with one notification per drained batch;
/// the rest goes to a pool of workers, which serve requests in parallel and complete them out of order, so a
/// slow request never holds up the ring.
/// </summary>
public sealed class Virtio9pDevice : IVirtioDevice, IDisposable
{
    /// <summary>VIRTIO_9P_MOUNT_TAG (virtio spec: "the mount tag is in the config space").</summary>
    public const ulong FeatureMountTag = 1UL << 0;

    /// <summary>The Linux driver reads at most this many tag bytes (include/uapi/linux/virtio_9p.h has no
    /// limit, but QEMU's MAX_TAG_LEN is 255 and a u16 length would allow more than any mount option can name).</summary>
    public const int MaxTagLength = 255;

    private readonly P9Server _server;
    private readonly ILogger _logger;
    /// <summary>Requests with the tag peeked in ring order: the worker ends exactly what was begun, whatever
    /// a hostile guest writes into the buffer meanwhile.</summary>
    private readonly WorkQueue<(DescriptorChain Request, int Tag, long Enqueued)> _queue = new();
    private readonly RequestStatistics _statistics = new();
    private readonly TagTracker<DescriptorChain> _tags = new();
    private readonly Thread[] _workers;
    /// <summary>Serve requests that cannot block on the queue thread (see <see cref="P9Server.IsNonBlocking"/>).</summary>
    private readonly bool _serveInline;
    /// <summary>The queue thread's own scratch memory for the requests it serves itself.</summary>
    private readonly WorkerBuffers _inlineBuffers = new() { MustNotBlock = true };
    private readonly VirtqExchange _inlineExchange = new();
    /// <summary>Our bug, but one a guest may be able to repeat at will: rate-limited like guest-triggered lines.</summary>
    private readonly LogRateLimiter _failureLog = new("9P requests that failed unexpectedly");
    /// <summary>A guest resetting its device in a loop makes the front-end stop the ring each time.</summary>
    private readonly LogRateLimiter _stopLog = new("virtio-9p device stops");

    private readonly BackendMetrics? _metrics;
    /// <summary>Treads the queue thread gave to a worker because their data was not in the page cache.</summary>
    private long _readsGivenBack;

    /// <summary>Treads the queue thread handed to a worker because they would have waited on the disk.</summary>
    internal long ReadsGivenBack => Volatile.Read(ref _readsGivenBack);

    public Virtio9pDevice(string tag, P9Server server, int workerCount, ILogger logger, BackendMetrics? metrics = null,
        bool serveInline = true)
    {
        _metrics = metrics;
        _serveInline = serveInline;
        byte[] tagBytes = Encoding.UTF8.GetBytes(tag);
        if (tagBytes.Length == 0 || tagBytes.Length > MaxTagLength)
        {
            throw new ArgumentException($"mount tag must be 1..{MaxTagLength} bytes", nameof(tag));
        }
        byte[] config = new byte[2 + tagBytes.Length];
        BinaryPrimitives.WriteUInt16LittleEndian(config, (ushort)tagBytes.Length);
        tagBytes.CopyTo(config, 2);
        Config = config;
        _server = server;
        _logger = logger;
        _workers = new Thread[Math.Max(1, workerCount)];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"9p-worker-{i}" };
            _workers[i].Start();
        }
    }

    public ulong DeviceFeatures => FeatureMountTag;
    public int QueueCount => 1;
    public ReadOnlyMemory<byte> Config { get; }

    public void HandleRequest(DescriptorChain request)
    {
        // Peek type, tag and the first field (fid or, for Tflush, oldtag) in ring order (see TagTracker); a
        // flush is decided here, a request that cannot block is served here, everything else queued.
        // header, then fid[4] (and for Twalk newfid[4] nwname[2]) for IsNonBlocking
        Span<byte> header = stackalloc byte[P9Limits.HeaderSize + 10];
        int peeked = request.CopyFromReadable(0, header);
        int tracked = -1;
        if (peeked >= P9Limits.HeaderSize)
        {
            ushort tag = BinaryPrimitives.ReadUInt16LittleEndian(header[5..]);
            var type = (P9MessageType)header[4];
            if (type == P9MessageType.Tflush && peeked >= P9Limits.HeaderSize + 2 &&
                request.ReadableLength == P9Limits.HeaderSize + 2)
            {
                ushort oldTag = BinaryPrimitives.ReadUInt16LittleEndian(header[7..]);
                if (!_tags.TryParkFlush(oldTag, request))
                {
                    CompleteFlush(request);
                }
                return;
            }
            _tags.Begin(tag);
            tracked = tag;
            if (_serveInline && _server.IsNonBlocking(type, header[P9Limits.HeaderSize..peeked]))
            {
                // Completed on this thread: the queue batches the used-ring notification (sooner in a long batch).
                long now = Stopwatch.GetTimestamp();
                _metrics?.Started();
                Serve(request, tracked, now, _inlineBuffers, _inlineExchange);
                return;
            }
        }
        _metrics?.Started();
        Enqueue(request, tracked, Stopwatch.GetTimestamp());
    }

    /// <summary>Hands a request to the workers (its metrics already started).</summary>
    private void Enqueue(DescriptorChain request, int tracked, long enqueued)
    {
        if (_queue.TryAdd((request, tracked, enqueued)))
        {
            return;
        }
        // shutting down
        _metrics?.Finished(0, Stopwatch.GetTimestamp(), Stopwatch.GetTimestamp());
        request.Complete(0);
        EndTag(tracked);
    }

    private void WorkerLoop()
    {
        var buffers = new WorkerBuffers();
        var exchange = new VirtqExchange();
        var self = new WorkQueue<(DescriptorChain, int, long)>.Worker();
        while (_queue.TryTake(self, out var item))
        {
            (DescriptorChain request, int tracked, long enqueued) = item;
            if (request.FrontEndGone)
            {
                // Its front-end left while it waited in the queue: no reply can reach anyone, and a Twrite's data
                // may no longer be the guest's. Drop it unserved.
                request.Complete(0);
                _metrics?.Finished(0, enqueued, Stopwatch.GetTimestamp()); // in-flight gauge back down
                EndTag(tracked);
                continue;
            }
            Serve(request, tracked, enqueued, buffers, exchange);
        }
    }

    /// <summary>Serves one request with the calling thread's buffers, completes it and ends its tag.</summary>
    private void Serve(DescriptorChain request, int tracked, long enqueued, WorkerBuffers buffers, VirtqExchange exchange)
    {
        Span<byte> type = stackalloc byte[1];
        int written = 0;
        long started = Stopwatch.GetTimestamp();
        // A session recording (fuzz seeds) holds each request once, written before it is served so that a request
        // that crashes or hangs the backend is in it; a Tread the queue thread may give back is recorded after, by
        // whichever thread answers it (the reply is in guest memory by then and the request buffer free again).
        bool mayGiveBack = false;
        try
        {
            exchange.Bind(request);
            request.CopyFromReadable(4, type);
            mayGiveBack = buffers.MustNotBlock && type[0] == (byte)P9MessageType.Tread;
            if (!mayGiveBack)
            {
                Record(request, buffers);
            }
            written = _server.Serve(exchange, buffers, out _);
        }
        catch (Exception e)
        {
            // A bug of ours, not the guest's: log it, answer nothing for this request, keep serving.
            if (_failureLog.ShouldLog(_logger, LogLevel.Error))
            {
                _logger.LogError(e, "9P request failed unexpectedly");
            }
        }
        finally
        {
            if (mayGiveBack && written != P9Server.NotServedHere)
            {
                Record(request, buffers); // answered here, or failed here (written stays 0)
            }
            exchange.Unbind();
        }
        if (written == P9Server.NotServedHere)
        {
            if (buffers.MustNotBlock)
            {
                // The queue thread met a read that would wait on the disk: a worker serves it, as if queued first.
                Interlocked.Increment(ref _readsGivenBack);
                Enqueue(request, tracked, enqueued);
                return;
            }
            // Only buffers that must not block give requests back; a worker that got one anyway (our bug) answers
            // nothing rather than passing it around forever.
            if (_failureLog.ShouldLog(_logger, LogLevel.Error))
            {
                _logger.LogError("9P request given back by a worker");
            }
            written = 0;
        }
        request.Complete(written);
        long finished = Stopwatch.GetTimestamp();
        _statistics.Record(type[0], enqueued, started, finished);
        _metrics?.Finished(type[0], enqueued, finished);
        EndTag(tracked);
    }

    /// <summary>Appends the request to the session recording, if one runs.</summary>
    private static void Record(DescriptorChain request, WorkerBuffers buffers)
    {
        if (SessionRecorder.Current is { } recorder)
        {
            int length = Math.Min(request.ReadableLength, SessionRecorder.MaxRecordBytes);
            recorder.Record(SessionRecorder.KindP9, 0, buffers.Request.AsSpan(0, request.CopyFromReadable(0, buffers.Request.AsSpan(0, length))));
        }
    }

    /// <summary>After a request's reply is in the used ring: answer the flushes that waited for it.</summary>
    private void EndTag(int tracked)
    {
        if (tracked < 0)
        {
            return;
        }
        List<DescriptorChain>? due = _tags.End((ushort)tracked);
        if (due is not null)
        {
            foreach (DescriptorChain flush in due)
            {
                CompleteFlush(flush);
            }
        }
    }

    /// <summary>Rflush: size[4] type[1] tag[2], the flush's own tag.</summary>
    private void CompleteFlush(DescriptorChain flush)
    {
        long now = Stopwatch.GetTimestamp();
        _statistics.Record((byte)P9MessageType.Tflush, now, now, now);
        Span<byte> message = stackalloc byte[P9Limits.HeaderSize];
        flush.CopyFromReadable(0, message);
        BinaryPrimitives.WriteUInt32LittleEndian(message, P9Limits.HeaderSize);
        message[4] = (byte)P9MessageType.Rflush;
        int written = flush.CopyToWritable(0, message);
        flush.Complete(written == message.Length ? written : 0);
    }

    public void OnStopped()
    {
        if (_stopLog.ShouldLog(_logger, LogLevel.Information))
        {
            _logger.LogInformation("virtio-9p device stopped by the front-end");
            _statistics.Log(_logger); // when suppressed, the counters carry on into the next report
            long givenBack = Interlocked.Exchange(ref _readsGivenBack, 0);
            if (givenBack > 0)
            {
                _logger.LogInformation("{Count} reads missed the page cache and went to a worker", givenBack);
            }
        }
    }

    /// <summary>
    /// The front-end is gone (the vhost-user server disposes a device after its connection): the workers end once
    /// the queue is empty, and the 9P session ends, so fids, their host fds and lock owners go now, or, for a
    /// fid a request still uses, when that request is done. Not waited for: a worker blocked in a helper round
    /// trip must hold up neither the process exit nor the next front-end, and it can no longer reach guest memory.
    /// </summary>
    public void Dispose()
    {
        _queue.Complete();
        _server.EndSession();
    }

    /// <summary>Waits for the workers to exit (tests: nothing of this device runs any more).</summary>
    internal bool WaitForWorkers(TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        foreach (Thread worker in _workers)
        {
            TimeSpan left = deadline - DateTime.UtcNow;
            if (left < TimeSpan.Zero || !worker.Join(left))
            {
                return false;
            }
        }
        return true;
    }
}

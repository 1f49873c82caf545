using Microsoft.Extensions.Logging;
using Tmds.Linux;
using VirtFs.VhostUser.Diagnostics;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>
/// One virtqueue as vhost-user sets it up (size, base, addresses, kick/call/err fds, enable) plus the thread that
/// serves it: waits on the kick eventfd (epoll, with a wake eventfd for stop/enable), drains the avail ring into
/// the device, and takes completions back from any thread under the used-ring lock.
/// Configuration methods are called from the message-loop thread only.
/// </summary>
internal sealed class VirtQueue : IRequestCompleter, IDisposable
{
    /// <summary>How long GET_VRING_BASE waits for the queue thread and in-flight requests before it says in the
    /// log that it is still waiting (it never stops waiting: see <see cref="Stop"/>).</summary>
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(3);

    private readonly int _index;
    private readonly IVirtioDevice _device;
    private readonly MemoryTable _memoryTable;
    private readonly ILogger _logger;

    private readonly object _usedLock = new();
    private readonly Stack<VirtqRequest> _pool = new();

    // Lines the guest (or the front-end on its behalf) can trigger again and again: a ring broken and reset in
    // a loop, kicks before the ring is set up, a request that makes the device throw.
    private readonly LogRateLimiter _brokenLog = new("virtqueue rule violations");
    private readonly LogRateLimiter _unconfiguredLog = new("kicks before the ring was set up");
    private readonly LogRateLimiter _deviceLog = new("device exceptions from HandleRequest");

    // Configuration (message-loop thread; read by the worker only while it runs, and then not changed).
    private int _size;
    private ushort _base;
    private VringAddress? _address;
    private FdHandle? _kick;
    /// <summary>Owns the call and err fds and is the only writer to them (never under a lock, never on the
    /// queue or a device thread: see <see cref="QueueNotifier"/>).</summary>
    private readonly QueueNotifier _notifier;
    private volatile bool _enabled;
    private bool _eventIdx;
    private bool _indirect;

    // Runtime.
    private Thread? _worker;
    private FdHandle? _wake;
    private volatile bool _stopRequested;
    private SplitQueue? _ring;         // guarded by _usedLock for writes; avail side used only by the worker
    private GuestMemory? _ringMemory;  // the reference that keeps _ring's pointers valid
    private int _inFlight;             // guarded by _usedLock
    private int _epoch;                // guarded by _usedLock; bumps when the ring stops
    private int _drainingThread;       // managed thread id of the worker while it calls the device
    private bool _pendingNotify;       // guarded by _usedLock
    private bool _throttled;           // guarded by _usedLock
    private volatile bool _broken;

    public VirtQueue(int index, IVirtioDevice device, MemoryTable memoryTable, ILogger logger)
    {
        _index = index;
        _device = device;
        _memoryTable = memoryTable;
        _logger = logger;
        _notifier = new QueueNotifier($"vhost-user-vq{index}-notify");
    }

    public bool IsRunning => _worker is not null;
    public bool IsBroken => _broken;
    public bool IsEnabled => _enabled;
    public int Size => _size;

    public bool SetSize(int size)
    {
        if (IsRunning)
        {
            return false;
        }
        _size = size;
        return true;
    }

    public bool SetBase(ushort value)
    {
        if (IsRunning)
        {
            return false;
        }
        _base = value;
        return true;
    }

    public bool SetAddress(in VringAddress address)
    {
        if (IsRunning)
        {
            return false;
        }
        _address = address;
        return true;
    }

    /// <summary>
    /// Switches the call eventfd atomically. A completion racing with the switch may have read the old handle
    /// and find it disposed (its signal is lost), and with EVENT_IDX the guest then never asks again; so, as
    /// libvhost-user does (vu_set_vring_call_exec), the new fd of a running ring is signalled once after every
    /// replacement. A spurious interrupt only makes the guest look at the used ring.
    /// </summary>
    public void SetCall(FdHandle? call)
    {
        _notifier.SetCall(call); // SafeHandle refcount: a write in progress keeps the old fd open until it is done
        if (call is not null && IsRunning)
        {
            _notifier.SignalCall();
        }
    }

    public void SetErr(FdHandle? err)
    {
        _notifier.SetErr(err);
    }

    public void SetEnabled(bool enabled)
    {
        _enabled = enabled;
        if (_wake is not null)
        {
            EventFd.Signal(_wake);
        }
    }

    /// <summary>SET_VRING_KICK: the ring starts (vhost-user.rst, "Starting and stopping rings").</summary>
    public void Start(FdHandle kick, bool eventIdx, bool indirect, bool enableNow)
    {
        bool wasEnabled = _enabled;
        if (IsRunning)
        {
            Stop(); // a new kick fd for a running ring: restart on it, keeping its enable state
        }
        else
        {
            wasEnabled = false;
        }
        _kick = kick;
        _eventIdx = eventIdx;
        _indirect = indirect;
        _broken = false;
        _stopRequested = false;
        if (enableNow || wasEnabled)
        {
            _enabled = true;
        }
        _wake = EventFd.Create(nonBlocking: true);
        _worker = new Thread(WorkerLoop) { Name = $"vhost-user-vq{_index}", IsBackground = true };
        _worker.Start();
    }

    /// <summary>
    /// GET_VRING_BASE: stops the queue thread, waits for every in-flight request to complete, and returns the next
    /// avail index to process.
    /// <para>
    /// Both waits are unbounded, on purpose (issue 13, item 3). Returning while the queue thread runs would let
    /// the ring snapshot go while it is in use and a later SET_VRING_KICK start a second thread on the same ring.
    /// Returning with requests in flight would count them as consumed in the base while their completions are
    /// dropped: after stop/cont the guest waits for them forever, and a device thread could still write guest
    /// memory the front-end believes quiet. Without VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD there is no way to hand
    /// unfinished requests back, so the only correct answer comes after they finish. Requests are bounded by
    /// host I/O (9P never waits on the guest); a device that hangs hangs the stop, and the log says so.
    /// </para>
    /// </summary>
    public ushort Stop() => StopRing(waitForInFlight: true);

    /// <summary>
    /// The front-end is gone (socket closed): stops the queue thread but does not wait for in-flight requests.
    /// Nobody will read their replies, and one blocked in a helper round trip may take arbitrarily long; the epoch
    /// bump makes their completions skip the used ring, and the connection's <see cref="GuestAccessGate"/> keeps
    /// them out of the buffers. Returns how many were abandoned.
    /// </summary>
    public int Abandon()
    {
        StopRing(waitForInFlight: false);
        lock (_usedLock)
        {
            return _inFlight;
        }
    }

    private ushort StopRing(bool waitForInFlight)
    {
        Thread? worker = _worker;
        if (worker is not null)
        {
            _stopRequested = true;
            EventFd.Signal(_wake);
            if (!worker.Join(StopTimeout))
            {
                _logger.LogError("vq{Index}: queue thread still busy after {Timeout} s (device blocked in HandleRequest?); waiting for it",
                    _index, StopTimeout.TotalSeconds);
                worker.Join();
            }
        }
        ushort next;
        lock (_usedLock)
        {
            bool warned = false;
            while (waitForInFlight && _inFlight > 0)
            {
                if (!Monitor.Wait(_usedLock, StopTimeout) && !warned)
                {
                    warned = true;
                    _logger.LogWarning("vq{Index}: {Count} requests still in flight after {Timeout} s; waiting for them so the vring base counts only what is in the used ring",
                        _index, _inFlight, StopTimeout.TotalSeconds);
                }
            }
            next = _ring?.LastAvailIndex ?? _base;
            _epoch++; // completions of requests still in flight now leave the used ring alone
            _ring = null;
            _ringMemory?.Release();
            _ringMemory = null;
            _pendingNotify = false;
            _throttled = false;
        }
        _base = next;
        _worker = null;
        _wake?.Dispose();
        _wake = null;
        _kick?.Dispose();
        _kick = null;
        _enabled = false;
        return next;
    }

    /// <summary>RESET_OWNER / RESET_DEVICE: stop and forget everything.</summary>
    public void Reset()
    {
        Stop();
        Forget();
    }

    private void Forget()
    {
        _size = 0;
        _base = 0;
        _address = null;
        SetCall(null);
        SetErr(null);
        _broken = false;
    }

    /// <summary>The connection is over (front-end gone): abandons what is in flight and closes the call/err fds.</summary>
    public void Dispose()
    {
        Abandon();
        Forget();
        _notifier.Dispose();
    }

    private unsafe void WorkerLoop()
    {
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
        {
            _logger.LogError("vq{Index}: epoll_create1 failed: errno {Errno}", _index, errno);
            return;
        }
        using var epoll = new FdHandle(epfd);
        FdHandle kick = _kick!;
        FdHandle wake = _wake!;
        bool kickAdded = false, wakeAdded = false;
        try
        {
            kick.DangerousAddRef(ref kickAdded);
            wake.DangerousAddRef(ref wakeAdded);
            epoll_event ev = default;
            ev.events = EPOLLIN;
            ev.data.fd = kick.Fd;
            // SAFETY: ev is a local; the fds are kept open by the AddRefs above.
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, kick.Fd, &ev) != 0)
            {
                _logger.LogError("vq{Index}: cannot poll kick fd: errno {Errno}", _index, errno);
                return;
            }
            ev.data.fd = wake.Fd;
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, wake.Fd, &ev) != 0)
            {
                _logger.LogError("vq{Index}: cannot poll wake fd: errno {Errno}", _index, errno);
                return;
            }
            epoll_event* events = stackalloc epoll_event[2];
            // Buffers may already be waiting (e.g. after a reconnect): look once before the first kick.
            Process();
            while (!_stopRequested)
            {
                // SAFETY: room for 2 events on the stack.
                int n = epoll_wait(epfd, events, 2, -1);
                if (n < 0)
                {
                    if (errno == EINTR)
                    {
                        continue;
                    }
                    _logger.LogError("vq{Index}: epoll_wait failed: errno {Errno}", _index, errno);
                    return;
                }
                for (int i = 0; i < n; i++)
                {
                    // Resetting the counters before draining: a kick that arrives during the drain re-arms us.
                    EventFd.Drain(events[i].data.fd);
                }
                if (_stopRequested)
                {
                    break;
                }
                Process();
            }
        }
        catch (Exception e)
        {
            // Our own bug; never let it take the process down, but say so loudly.
            _logger.LogError(e, "vq{Index}: queue thread failed", _index);
            _broken = true;
        }
        finally
        {
            if (kickAdded)
            {
                kick.DangerousRelease();
            }
            if (wakeAdded)
            {
                wake.DangerousRelease();
            }
        }
    }

    /// <summary>Drains the avail ring into the device, then sends at most one notification for the batch.</summary>
    private void Process()
    {
        if (!_enabled || _broken)
        {
            return;
        }
        SplitQueue? ring = EnsureRing();
        if (ring is null)
        {
            return;
        }
        Volatile.Write(ref _drainingThread, Environment.CurrentManagedThreadId);
        try
        {
            while (!_stopRequested && _enabled)
            {
                lock (_usedLock)
                {
                    if (_inFlight >= ring.Size)
                    {
                        // Each in-flight request holds a head; more than the ring size means reused heads.
                        _throttled = true;
                        break;
                    }
                }
                VirtqRequest request = Rent();
                QueueError error = ring.TryPop(request, out bool popped);
                if (error != QueueError.None || !popped)
                {
                    Return(request);
                    if (error != QueueError.None)
                    {
                        MarkBroken(error);
                        break;
                    }
                    if (ring.EnableNotification())
                    {
                        continue;
                    }
                    break;
                }
                GuestMemory memory = ring.Memory;
                if (!memory.TryAcquire())
                {
                    // _ringMemory holds a reference for as long as this thread runs (Stop joins it before
                    // releasing), so this is our bug; going on would let the request outlive the mapping.
                    Return(request);
                    throw new InvalidOperationException($"vq{_index}: ring memory already released under a running queue thread");
                }
                lock (_usedLock)
                {
                    _inFlight++;
                    request.Epoch = _epoch;
                }
                request.Memory = memory;
                request.Completer = this;
                request.QueueIndex = _index;
                request.MarkOwnedByDevice();
                try
                {
                    _device.HandleRequest(request);
                }
                catch (Exception e)
                {
                    // A device bug; the request may or may not have been completed: we cannot tell, so leave it.
                    if (_deviceLog.ShouldLog(_logger, LogLevel.Error))
                    {
                        _logger.LogError(e, "vq{Index}: device threw from HandleRequest", _index);
                    }
                }
            }
        }
        finally
        {
            Volatile.Write(ref _drainingThread, 0);
        }
        FlushNotification();
    }

    private void FlushNotification()
    {
        bool notify = false;
        lock (_usedLock)
        {
            if (_pendingNotify && _ring is not null)
            {
                _pendingNotify = false;
                notify = _ring.ShouldNotify();
            }
        }
        if (notify)
        {
            _notifier.SignalCall();
        }
    }

    /// <summary>(Re)translates the rings when the memory table changed since the last drain.</summary>
    private SplitQueue? EnsureRing()
    {
        lock (_usedLock)
        {
            if (_ring is not null && ReferenceEquals(_ringMemory, _memoryTable.Current))
            {
                return _ring;
            }
            if (_size == 0 || _address is null)
            {
                if (_unconfiguredLog.ShouldLog(_logger, LogLevel.Warning))
                {
                    _logger.LogWarning("vq{Index}: kicked before SET_VRING_NUM/SET_VRING_ADDR", _index);
                }
                return null;
            }
            GuestMemory memory = _memoryTable.Acquire();
            QueueError e = SplitQueue.TryCreate(memory, _address.Value, _size, _base, _eventIdx, _indirect, _ring, out SplitQueue? ring);
            if (e != QueueError.None)
            {
                memory.Release();
                // The table may be incomplete right now (regions added one by one); only a kick with no usable
                // ring at all is an error, and it is the driver's: mark broken.
                MarkBrokenLocked(e);
                return null;
            }
            _ringMemory?.Release();
            _ringMemory = memory;
            _ring = ring;
            return ring;
        }
    }

    private void MarkBroken(QueueError error)
    {
        lock (_usedLock)
        {
            MarkBrokenLocked(error);
        }
    }

    private void MarkBrokenLocked(QueueError error)
    {
        if (_broken)
        {
            return;
        }
        if (_brokenLog.ShouldLog(_logger, LogLevel.Error))
        {
            _logger.LogError("vq{Index}: driver broke the virtqueue rules ({Error}); queue stopped until reset", _index, error);
        }
        _broken = true;
        // vhost-user.rst: the err eventfd tells the front-end about an error on this ring. Only asked for
        // here: the write happens on the notifier thread, never under the used-ring lock.
        _notifier.SignalErr();
    }

    void IRequestCompleter.Complete(VirtqRequest request, uint bytesWritten)
    {
        bool notify = false;
        bool wake = false;
        lock (_usedLock)
        {
            if (request.Epoch == _epoch && _ring is not null)
            {
                _ring.AddUsed(request.Head, bytesWritten);
                if (Volatile.Read(ref _drainingThread) == Environment.CurrentManagedThreadId)
                {
                    _pendingNotify = true; // completed inline during the drain: one notification at its end
                }
                else
                {
                    notify = _ring.ShouldNotify();
                }
            }
            _inFlight--;
            if (_inFlight == 0)
            {
                Monitor.PulseAll(_usedLock);
            }
            wake = _throttled;
            _throttled = false;
        }
        if (notify)
        {
            _notifier.SignalCallFromWorker(); // no lock held, in-flight count already released
        }
        if (wake)
        {
            EventFd.Signal(_wake);
        }
        GuestMemory? memory = request.Memory;
        Return(request);
        memory?.Release();
    }

    private VirtqRequest Rent()
    {
        lock (_pool)
        {
            if (_pool.TryPop(out VirtqRequest? r))
            {
                return r;
            }
        }
        return new VirtqRequest();
    }

    private void Return(VirtqRequest request)
    {
        request.Reset();
        request.MarkFree();
        lock (_pool)
        {
            _pool.Push(request);
        }
    }
}

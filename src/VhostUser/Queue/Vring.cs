using Microsoft.Extensions.Logging;
using Tmds.Linux;
using VirtFs.VhostUser.Diagnostics;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>
/// One vring as vhost-user sets it up (size, base, addresses, kick/call/err fds, enable) and its life cycle
/// (start, stop, drain, abandon, reset). The thread that serves it is in Vring.Worker.cs (waits on the kick eventfd,
/// drains the avail ring into the device), completions are in Vring.Completion.cs (from any thread, under the
/// used-ring lock); the ring layout itself is <see cref="SplitRing"/>, the chains it hands out
/// <see cref="DescriptorChain"/>s from a <see cref="ChainPool"/>.
/// Configuration methods are called from the message-loop thread only.
/// </summary>
internal sealed partial class Vring : IChainCompleter, IDisposable
{
    /// <summary>How long GET_VRING_BASE waits for the queue thread and in-flight requests before it says in the
    /// log that it is still waiting (it never stops waiting: see <see cref="Stop"/>).</summary>
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(3);

    private readonly int _index;
    private readonly IVirtioDevice _device;
    private readonly MemoryTable _memoryTable;
    private readonly ILogger _logger;

    private readonly object _usedLock = new();
    private readonly ChainPool _pool = new();

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
    private SplitRing? _ring;         // guarded by _usedLock for writes; avail side used only by the worker
    private GuestMemory? _ringMemory;  // the reference that keeps _ring's pointers valid
    private int _inFlight;             // guarded by _usedLock
    private int _epoch;                // guarded by _usedLock; bumps when the ring stops
    private int _drainingThread;       // managed thread id of the worker while it calls the device
    private bool _pendingNotify;       // guarded by _usedLock; set only by the draining thread
    private long _pendingSince;        // when _pendingNotify was set (Stopwatch timestamp); written under _usedLock by the draining thread, read by it alone
    private bool _throttled;           // guarded by _usedLock
    private volatile bool _broken;

    public Vring(int index, IVirtioDevice device, MemoryTable memoryTable, ILogger logger)
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

    /// <summary>
    /// The server stops while the front-end is still connected (SIGTERM): the queue thread takes no new requests and
    /// the requests in flight complete into the used ring as usual, for at most <paramref name="limit"/>; any left
    /// after it are abandoned as in <see cref="Abandon"/>.
    /// </summary>
    public void Drain(TimeSpan limit) => StopRing(waitForInFlight: true, limit);

    private ushort StopRing(bool waitForInFlight, TimeSpan? limit = null)
    {
        DateTime deadline = limit is { } l ? DateTime.UtcNow + l : DateTime.MaxValue;
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
                if (DateTime.UtcNow >= deadline)
                {
                    _logger.LogWarning("vq{Index}: {Count} requests still in flight at the end of the drain; their replies are dropped",
                        _index, _inFlight);
                    break;
                }
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
}

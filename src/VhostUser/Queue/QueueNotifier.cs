namespace VirtFs.VhostUser;

/// <summary>
/// Writes a queue's call and err eventfds (the front-end's) on a thread of its own.
/// <para>
/// Why another thread: those fds are not ours. O_NONBLOCK lives on the open file description, which the
/// front-end shares with us, so it can clear the flag after we set it and fill the counter to its maximum
/// (0xfffffffffffffffe); a write(2) then blocks until someone reads. Linux offers no per-call non-blocking
/// write for an eventfd (pwritev2 with RWF_NOWAIT answers EOPNOTSUPP), and poll(POLLOUT) before the write is
/// racy against a writer on the other side. So the only thread allowed to block on such an fd is one that
/// holds no lock and serves nothing else: this one (issue 13, item 2). Queue and device threads only set a
/// pending bit and wake it, which costs one futex wake where they used to pay one eventfd write, and nothing
/// at all while a signal of the same kind is still pending (signals coalesce; an eventfd counts, it does not
/// queue). A full counter is treated as already signalled.
/// </para>
/// <para>
/// If a hostile front-end does block the write, this thread waits in it until the front-end reads the
/// counter or forever; the queue, its stop and reset, and the connection carry on without it.
/// </para>
/// </summary>
internal sealed class QueueNotifier : IDisposable
{
    private const int CallBit = 1, ErrBit = 2;

    private readonly string _name;
    private readonly object _sync = new();
    private FdHandle? _call;
    private FdHandle? _err;
    private int _pending;       // CallBit | ErrBit, set by any thread, taken by the notifier thread
    private Thread? _thread;    // guarded by _sync; started at the first signal
    private bool _disposed;     // guarded by _sync

    public QueueNotifier(string name) => _name = name;

    /// <summary>Replaces the call fd; the old one closes once a write in progress on it is done (SafeHandle refcount).</summary>
    public void SetCall(FdHandle? call) => Interlocked.Exchange(ref _call, call)?.Dispose();

    public void SetErr(FdHandle? err) => Interlocked.Exchange(ref _err, err)?.Dispose();

    /// <summary>Asks for one write to the call fd, never blocking; safe under any lock.</summary>
    public void SignalCall() => Request(CallBit);

    /// <summary>
    /// For a thread that holds no lock (a worker after its request left the in-flight count, or the queue thread
    /// at the end of a drained batch): writes the call fd on this thread when the counter has room (poll POLLOUT,
    /// timeout 0), skipping the notifier's thread hop, which costs one more thread wake-up per interrupt (in
    /// interleaved TCG-lab runs 4 KiB random reads went from about 1400 to 1100 IOPS with the hop; with requests
    /// served on the queue thread, tools/bench/device.sh measured 4x the server CPU per request at depth 1 with
    /// the hop). A full counter counts as signalled. Residual risk, accepted: a front-end that fills the counter
    /// between the poll and the write, with O_NONBLOCK cleared, blocks this thread until it reads the counter;
    /// only its own device stalls, exactly as when it blocks a worker (GET_VRING_BASE already waits for every
    /// in-flight request), and it gains nothing it could not get by never reading the call fd. Stop, reset and
    /// every lock holder never get here.
    /// </summary>
    public void SignalCallFromWorker()
    {
        if ((Volatile.Read(ref _pending) & CallBit) != 0) return; // the notifier is about to write anyway
        if (!EventFd.SignalIfRoom(Volatile.Read(ref _call))) Request(CallBit);
    }

    /// <summary>Asks for one write to the err fd, never blocking; safe under any lock.</summary>
    public void SignalErr() => Request(ErrBit);

    private void Request(int bit)
    {
        // A bit already pending is taken (Exchange below) after our used entry was published, so the write it
        // leads to covers us too.
        if ((Interlocked.Or(ref _pending, bit) & bit) != 0)
        {
            return;
        }
        lock (_sync)
        {
            if (_disposed)
            {
                return;
            }
            if (_thread is null)
            {
                _thread = new Thread(Run) { Name = _name, IsBackground = true };
                _thread.Start();
            }
            Monitor.Pulse(_sync);
        }
    }

    private void Run()
    {
        while (true)
        {
            int bits;
            lock (_sync)
            {
                while ((bits = Interlocked.Exchange(ref _pending, 0)) == 0)
                {
                    if (_disposed)
                    {
                        return;
                    }
                    Monitor.Wait(_sync);
                }
            }
            if ((bits & CallBit) != 0)
            {
                EventFd.Signal(Volatile.Read(ref _call));
            }
            if ((bits & ErrBit) != 0)
            {
                EventFd.Signal(Volatile.Read(ref _err));
            }
        }
    }

    /// <summary>Closes both fds and lets the thread end. Does not wait for it: it may be blocked in a write the
    /// front-end never lets finish, and then it ends when that write does.</summary>
    public void Dispose()
    {
        lock (_sync)
        {
            _disposed = true;
            Monitor.Pulse(_sync);
        }
        SetCall(null);
        SetErr(null);
    }
}

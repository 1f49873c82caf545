namespace VirtFs.VhostUser;

/// <summary>
/// The threads that serve one running vring. Idle ones wait for a kick (the vring's epoll set, kick edge-triggered,
/// so one thread wakes per kick); the one that wakes drains the avail ring into the device, one drainer at a time.
/// <para>
/// Why more than one: a request that may block (a helper round trip, a disk read) was handed from the queue thread
/// to a worker, one more thread wake-up before it started: under a TCG guest 0.03-0.06 ms per request and about a
/// third more service time besides, in 2026-12-05's backend logs. Now the drainer serves such a request itself
/// when it may stop draining (<see cref="TryHandOff"/>): the ring is empty with guest notifications on, so every
/// later request kicks, and another thread of the crew waits for that kick. Nobody is woken for the hand-off.
/// A thread whose request is done goes back to waiting. With no thread left to wait and <see cref="MaxThreads"/>
/// reached, the hand-off is refused and the device queues the request for its own workers: a slow request still
/// never holds up the ring.
/// </para>
/// One crew per start of the ring: after a stop its threads end, the ones serving a request when that is done.
/// </summary>
internal sealed class QueueCrew
{
    /// <summary>Threads of one ring at most, waiting or serving; beyond it the device's workers take the requests
    /// that may block, so this bounds only how many of them start without a wake-up at once.</summary>
    public const int MaxThreads = 8;

    /// <summary>The crew whose drainer the calling thread is, if any.</summary>
    [ThreadStatic] private static QueueCrew? t_draining;

    private readonly Func<bool> _waitForWork;
    private readonly Action _drain;
    private readonly string _threadName;
    private readonly object _sync = new();
    private int _threads;          // guarded by _sync: threads of this crew alive
    private int _onDuty;           // guarded by _sync: threads alive and not serving a handed-off request
    private volatile bool _stopped;
    private int _waiting;          // threads in (or about to enter) _waitForWork
    private int _draining;         // 1 while a thread owns the avail ring
    private int _drainAgain;       // 1: a thread found the ring owned; the owner drains once more before letting go

    /// <param name="waitForWork">Blocks until a kick or a wake; false when the ring stops (the thread ends).</param>
    /// <param name="drain">Drains the avail ring into the device; called by one thread at a time. It returns early
    /// when the caller handed off (<see cref="IsDraining"/> is false then).</param>
    public QueueCrew(Func<bool> waitForWork, Action drain, string threadName)
    {
        _waitForWork = waitForWork;
        _drain = drain;
        _threadName = threadName;
    }

    /// <summary>Whether the calling thread owns the avail ring now.</summary>
    public bool IsDraining => ReferenceEquals(t_draining, this);

    /// <summary>Starts the first thread; it drains once before it waits (buffers may already be there).</summary>
    public void Start()
    {
        lock (_sync)
        {
            _threads++;
            _onDuty++;
        }
        new Thread(() => Run(drainFirst: true)) { Name = _threadName, IsBackground = true }.Start();
    }

    /// <summary>
    /// Called by the drainer, for the request it just popped, once the ring is empty with guest notifications on: it
    /// stops draining and may block on that request. True when another thread waits for the next kick, or a new
    /// thread was started to (fewer than <see cref="MaxThreads"/>). False when not called by the drainer, when the
    /// crew stops, or when every thread is busy: the caller drains on and must not block.
    /// <paramref name="endTurn"/> runs once the answer is yes, before the ring is let go (the drainer's batched
    /// notification); <paramref name="wakeOne"/> wakes a waiting thread when a kick came while we owned the ring.
    /// </summary>
    public bool TryHandOff(Action endTurn, Action wakeOne)
    {
        if (!IsDraining)
        {
            return false;
        }
        bool spawn = false;
        lock (_sync)
        {
            if (_stopped)
            {
                return false;
            }
            if (Volatile.Read(ref _waiting) == 0)
            {
                if (_threads >= MaxThreads)
                {
                    return false;
                }
                _threads++;
                _onDuty++;
                spawn = true;
            }
            _onDuty--; // this thread, until its request is done
        }
        t_draining = null;
        endTurn();
        Interlocked.Exchange(ref _draining, 0); // full fence: the read below cannot move before the release
        if (Volatile.Read(ref _drainAgain) == 1)
        {
            wakeOne(); // the thread the kick woke found the ring ours and went back to wait: send one again
        }
        if (spawn)
        {
            new Thread(() => Run(drainFirst: false)) { Name = _threadName, IsBackground = true }.Start();
        }
        return true;
    }

    /// <summary>
    /// No thread takes work again: waiting threads end, threads serving a request when it is done. Waits for every
    /// thread on duty (not for requests in flight: those are the ring's business). <paramref name="wakeAll"/> is
    /// called again every 50 ms while it waits: a thread that was reading the wake fd just as the stop began may have
    /// taken its signal away from a thread still asleep. <paramref name="stillWaiting"/> runs once after
    /// <paramref name="warnAfter"/>.
    /// </summary>
    public void Stop(Action wakeAll, TimeSpan warnAfter, Action stillWaiting)
    {
        lock (_sync)
        {
            _stopped = true;
        }
        DateTime warnAt = DateTime.UtcNow + warnAfter;
        bool warned = false;
        while (true)
        {
            wakeAll();
            lock (_sync)
            {
                if (_onDuty == 0)
                {
                    return;
                }
                Monitor.Wait(_sync, 50);
                if (_onDuty == 0)
                {
                    return;
                }
            }
            if (!warned && DateTime.UtcNow >= warnAt)
            {
                warned = true;
                stillWaiting();
            }
        }
    }

    private void Run(bool drainFirst)
    {
        bool onDuty = true;
        try
        {
            if (drainFirst && DrainWhileAsked())
            {
                onDuty = BackOnDuty();
            }
            while (onDuty && !_stopped)
            {
                Interlocked.Increment(ref _waiting);
                bool work = _waitForWork();
                Interlocked.Decrement(ref _waiting);
                if (!work || _stopped)
                {
                    break;
                }
                if (DrainWhileAsked())
                {
                    onDuty = BackOnDuty(); // served a request after a hand-off
                }
            }
        }
        finally
        {
            lock (_sync)
            {
                if (onDuty)
                {
                    _onDuty--;
                }
                _threads--;
                Monitor.PulseAll(_sync);
            }
        }
    }

    /// <summary>After serving a handed-off request: on duty again, unless the crew stopped meanwhile.</summary>
    private bool BackOnDuty()
    {
        lock (_sync)
        {
            if (_stopped)
            {
                return false;
            }
            _onDuty++;
            return true;
        }
    }

    /// <summary>
    /// Drains while asked, one owner at a time: a thread that finds the ring owned leaves a request for one more
    /// drain and goes back to wait; the owner sees it before it lets go. True when this thread handed off (and has
    /// served that request by now).
    /// </summary>
    private bool DrainWhileAsked()
    {
        Volatile.Write(ref _drainAgain, 1);
        while (Volatile.Read(ref _drainAgain) == 1 && Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            Volatile.Write(ref _drainAgain, 0);
            t_draining = this;
            bool handedOff = true;
            try
            {
                _drain();
            }
            finally
            {
                if (IsDraining)
                {
                    handedOff = false;
                    t_draining = null;
                    Interlocked.Exchange(ref _draining, 0); // full fence before _drainAgain is read again
                }
            }
            if (handedOff)
            {
                return true; // TryHandOff let the ring go; this thread has served its request since
            }
        }
        return false;
    }
}

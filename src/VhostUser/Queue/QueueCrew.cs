namespace VirtFs.VhostUser;

/// <summary>
/// The threads that take turns as a running vring's queue thread (leader/followers). Exactly one, the leader,
/// waits on the kick and drains the avail ring. When the device meets a request that may block (a helper round
/// trip, a disk read) it asks the leader to hand the ring to another thread (<see cref="TryHandOff"/>), and then
/// serves that request on the thread that popped it: the request starts at once, where handing it to a worker
/// would cost one more thread wake-up before it starts (under a TCG guest about 0.03-0.06 ms per request in
/// 2026-12-05's runs, and a third of the service time besides), while the new leader's wake-up is off the
/// request's path. A thread whose request is done joins the idle followers. With none idle and
/// <see cref="MaxThreads"/> reached, the hand-off is refused and the device queues the request for its own
/// workers, so a slow request still never holds up the ring.
/// One crew per start of the ring: threads of a stopped crew end when their request does, and never lead again.
/// </summary>
internal sealed class QueueCrew
{
    /// <summary>Leader plus threads serving a request or waiting to lead. Beyond it the device's own workers take
    /// over, so this bounds only how many requests start without a hand-off at once.</summary>
    public const int MaxThreads = 8;

    /// <summary>One per thread; parked in the idle stack while the thread waits to lead.</summary>
    private sealed class Member
    {
        // spinCount 0: the promotion comes from another thread's wake-up either way.
        public readonly ManualResetEventSlim Wake = new(false, 0);
        public bool Promoted; // guarded by _sync: woken to lead (false: woken because the crew stopped)
    }

    /// <summary>The crew whose leader the calling thread is, if any.</summary>
    [ThreadStatic] private static QueueCrew? t_leading;

    private readonly Action _lead;
    private readonly string _threadName;
    private readonly object _sync = new();
    private readonly Stack<Member> _idle = new(); // guarded by _sync; LIFO keeps the few threads a light load needs warm
    private int _threads;  // guarded by _sync: threads of this crew alive
    private int _onDuty;   // guarded by _sync: the leader plus idle followers (what a stop waits for)
    private bool _stopped; // guarded by _sync

    /// <param name="lead">One turn as leader: returns when the ring stops, or as soon as this thread handed the ring
    /// off (<see cref="IsLeading"/> is then false).</param>
    public QueueCrew(Action lead, string threadName)
    {
        _lead = lead;
        _threadName = threadName;
    }

    /// <summary>Whether the calling thread is this crew's leader now.</summary>
    public bool IsLeading => ReferenceEquals(t_leading, this);

    /// <summary>Starts the first thread, as the leader.</summary>
    public void Start()
    {
        lock (_sync)
        {
            _threads++;
            _onDuty++;
        }
        StartThread();
    }

    /// <summary>
    /// Called by the leader before it does something that may block: another thread becomes the leader (an idle
    /// follower, or a new thread while fewer than <see cref="MaxThreads"/> exist) and the caller stops leading. False
    /// when not called by the leader, when the crew stops, or when no thread is free; the caller still leads then
    /// and must not block. <paramref name="beforePromotion"/> runs on the caller, after the decision and before the
    /// next leader can start: it ends the caller's turn (the new leader drains the same avail ring at once).
    /// </summary>
    public bool TryHandOff(Action beforePromotion)
    {
        if (!IsLeading)
        {
            return false;
        }
        Member? next;
        lock (_sync)
        {
            if (_stopped)
            {
                return false;
            }
            if (_idle.TryPop(out next))
            {
                next.Promoted = true;
            }
            else if (_threads < MaxThreads)
            {
                _threads++;
                _onDuty++; // the new thread starts on duty, as the leader
            }
            else
            {
                return false;
            }
            _onDuty--; // this thread: off duty until its request is done and it waits to lead again
        }
        t_leading = null;
        beforePromotion();
        if (next is not null)
        {
            next.Wake.Set();
        }
        else
        {
            StartThread();
        }
        return true;
    }

    /// <summary>
    /// No thread leads again: idle followers end now, threads serving a request when it is done. Waits until the
    /// leader's turn and every follower ended (not for threads serving requests: in-flight requests are the ring's
    /// business). <paramref name="wakeLeader"/> gets the leader out of its wait; <paramref name="stillWaiting"/>
    /// runs once after <paramref name="warnAfter"/> while the leader has not returned yet.
    /// </summary>
    public void Stop(Action wakeLeader, TimeSpan warnAfter, Action stillWaiting)
    {
        Member[] idle;
        lock (_sync)
        {
            _stopped = true;
            idle = _idle.ToArray();
            _idle.Clear();
        }
        foreach (Member member in idle)
        {
            member.Wake.Set(); // Promoted stays false: the member ends
        }
        wakeLeader();
        lock (_sync)
        {
            bool warned = false;
            while (_onDuty > 0)
            {
                if (!Monitor.Wait(_sync, warnAfter) && !warned && _onDuty > 0)
                {
                    warned = true;
                    stillWaiting();
                }
            }
        }
    }

    private void StartThread()
    {
        new Thread(Run) { Name = _threadName, IsBackground = true }.Start();
    }

    private void Run()
    {
        var self = new Member();
        try
        {
            while (LeadOneTurn() && WaitToLead(self))
            {
            }
        }
        finally
        {
            lock (_sync)
            {
                _threads--;
            }
        }
    }

    /// <summary>True when this thread handed the ring off during its turn (and has served the request it took
    /// on); false when the turn ended because the ring stopped: the thread ends.</summary>
    private bool LeadOneTurn()
    {
        t_leading = this;
        bool handedOff = false;
        try
        {
            _lead();
        }
        finally
        {
            handedOff = !IsLeading;
            t_leading = null;
            if (!handedOff)
            {
                lock (_sync)
                {
                    _onDuty--;
                    Monitor.PulseAll(_sync);
                }
            }
        }
        return handedOff;
    }

    /// <summary>Parks as an idle follower until promoted (true) or the crew stops (false).</summary>
    private bool WaitToLead(Member self)
    {
        lock (_sync)
        {
            if (_stopped)
            {
                return false;
            }
            self.Wake.Reset();
            self.Promoted = false;
            _idle.Push(self);
            _onDuty++;
        }
        self.Wake.Wait();
        lock (_sync)
        {
            if (self.Promoted)
            {
                return true; // still counted on duty, now as the leader
            }
            _onDuty--; // woken by Stop
            Monitor.PulseAll(_sync);
            return false;
        }
    }
}

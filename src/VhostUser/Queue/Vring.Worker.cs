using Microsoft.Extensions.Logging;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>The queue threads of a <see cref="Vring"/> (its <see cref="QueueCrew"/>): wait on the kick eventfd (epoll,
/// with a wake eventfd for stop/enable), drain the avail ring into the device one thread at a time, and mark the ring
/// broken when the driver breaks its rules.</summary>
internal sealed partial class Vring
{
    /// <summary>
    /// Opens the epoll set the crew's threads wait in, all on the same set: the kick edge-triggered, so each kick
    /// wakes one waiting thread; the wake fd level-triggered, so a stop (which leaves it readable) reaches every
    /// thread. It and the two fds live until <see cref="StopRing"/> has seen the crew off duty. Null (logged) when
    /// the kernel refuses: the ring is then not served.
    /// </summary>
    private unsafe FdHandle? OpenPoll(FdHandle kick, FdHandle wake)
    {
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
        {
            _logger.LogError("vq{Index}: epoll_create1 failed: errno {Errno}", _index, errno);
            return null;
        }
        var epoll = new FdHandle(epfd);
        foreach ((FdHandle fd, int events, string name) in (ReadOnlySpan<(FdHandle, int, string)>)[(kick, EPOLLIN | EPOLLET, "kick"), (wake, EPOLLIN, "wake")])
        {
            epoll_event ev = default;
            ev.events = events;
            ev.data.fd = fd.Fd;
            // SAFETY: ev is a local; both fds are open (disposed only after the crew stopped).
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd.Fd, &ev) != 0)
            {
                _logger.LogError("vq{Index}: cannot poll {Which} fd: errno {Errno}", _index, name, errno);
                epoll.Dispose();
                return null;
            }
        }
        return epoll;
    }

    /// <summary>A crew thread waits here for a kick or a wake (<see cref="QueueCrew"/>); false when the ring stops.</summary>
    private unsafe bool WaitForWork()
    {
        FdHandle? poll = _poll;
        FdHandle? wake = _wake;
        if (poll is null || wake is null)
        {
            return false;
        }
        epoll_event* events = stackalloc epoll_event[2];
        while (!_stopRequested)
        {
            // SAFETY: room for 2 events on the stack; poll stays open until the crew is off duty.
            int n = epoll_wait(poll.Fd, events, 2, -1);
            if (n < 0)
            {
                if (errno == EINTR)
                {
                    continue;
                }
                _logger.LogError("vq{Index}: epoll_wait failed: errno {Errno}", _index, errno);
                _broken = true;
                return false;
            }
            if (_stopRequested)
            {
                break; // the wake fd stays readable, so every other waiting thread returns too
            }
            for (int i = 0; i < n; i++)
            {
                // Resetting the counters before draining: a kick that arrives during the drain re-arms us.
                EventFd.Drain(events[i].data.fd);
            }
            return true;
        }
        return false;
    }

    /// <summary>The crew's drainer: the avail ring into the device (see <see cref="Process"/>).</summary>
    private void DrainRing()
    {
        QueueCrew? crew = _crew;
        if (crew is null || _stopRequested)
        {
            return;
        }
        try
        {
            Process(crew);
        }
        catch (Exception e)
        {
            // Our own bug; never let it take the process down, but say so loudly.
            _logger.LogError(e, "vq{Index}: queue thread failed", _index);
            _broken = true;
        }
    }

    /// <summary>
    /// The device asks to block on the request it was just given (<see cref="DescriptorChain.TryHandOffQueue"/>).
    /// Only with the ring empty after guest notifications are switched on (EVENT_IDX: avail_event written, then a
    /// full barrier and a re-check): then the guest kicks for anything it adds, and a waiting crew thread takes it.
    /// With more chains waiting the answer is no: this thread drains on, and the device's workers, woken side by side,
    /// serve what may block.
    /// </summary>
    bool IChainCompleter.TryHandOffQueue()
    {
        QueueCrew? crew = _crew;
        if (crew is null || !crew.IsDraining)
        {
            return false;
        }
        // _ring: the avail side is the drainer's; it is replaced only by the drainer (EnsureRing) or after the crew stopped.
        if (_ring is not { } ring || ring.EnableNotification())
        {
            return false;
        }
        return crew.TryHandOff(_endDrainTurn, _wakeOne);
    }

    private void EndDrainTurn()
    {
        Volatile.Write(ref _drainingThread, 0);
        FlushNotification();
    }

    /// <summary>Drains the avail ring into the device, then sends at most one notification for the batch.</summary>
    private void Process(QueueCrew crew)
    {
        if (!_enabled || _broken)
        {
            return;
        }
        SplitRing? ring = EnsureRing();
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
                DescriptorChain request = _pool.Rent();
                QueueError error = ring.TryPop(request, out bool popped);
                if (error != QueueError.None || !popped)
                {
                    _pool.Return(request);
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
                    _pool.Return(request);
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
                if (!crew.IsDraining)
                {
                    return; // handed off and served the request since: other crew threads take the ring (EndDrainTurn ran)
                }
            }
        }
        finally
        {
            if (crew.IsDraining)
            {
                Volatile.Write(ref _drainingThread, 0);
            }
        }
        FlushNotification();
    }

    /// <summary>(Re)translates the rings when the memory table changed since the last drain.</summary>
    private SplitRing? EnsureRing()
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
            QueueError e = SplitRing.TryCreate(memory, _address.Value, _size, _base, _eventIdx, _indirect, _ring, out SplitRing? ring);
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
}

using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>The queue thread of a <see cref="Vring"/>: waits on the kick eventfd (epoll, with a wake eventfd for
/// stop/enable), drains the avail ring into the device, and marks the ring broken when the driver breaks its rules.</summary>
internal sealed partial class Vring
{
    /// <summary>The longest a request completed inside a drain waits for its notification while the drain serves
    /// others: 100 us, a few inline requests.</summary>
    private static readonly long NotifyAfterTicks = Stopwatch.Frequency / 10_000;

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
                // Requests the device completed right here wait for one notification at the end of the batch, but not
                // much past NotifyAfterTicks: a guest with many requests in flight (libaio, parallel readahead) then
                // reaps and refills while we serve the rest of a long batch, where it used to sit on finished replies.
                // Not after every request: a notification per request cost the device bench 70% more CPU per 4 KiB
                // read at depth 16 (lever 8 in docs/performance.md). No lock is held here (the device may have held
                // one when it completed); _pendingNotify is read without the lock because only this thread sets it.
                if (_pendingNotify && Stopwatch.GetTimestamp() - _pendingSince >= NotifyAfterTicks)
                {
                    FlushNotification();
                }
            }
        }
        finally
        {
            Volatile.Write(ref _drainingThread, 0);
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

using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace VirtFs.VhostUser;

/// <summary>Completions of a <see cref="Vring"/>: a device hands a chain back from any thread; it goes into the used
/// ring under the used-ring lock (unless the ring stopped since: epoch), and the guest is notified as EVENT_IDX
/// allows: at once for a completion on another thread; for those made inside a drain once per batch, or sooner when
/// the batch runs long (Process).</summary>
internal sealed partial class Vring
{
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
            // No lock held here: the queue thread writes the call fd itself when the counter has room (one wake-up
            // fewer per batch for requests the device served inline); see QueueNotifier.SignalCallFromWorker.
            _notifier.SignalCallFromWorker();
        }
    }

    void IChainCompleter.Complete(DescriptorChain request, uint bytesWritten)
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
                    if (!_pendingNotify)
                    {
                        _pendingNotify = true; // completed inside a drain: one notification for the batch (Process)
                        _pendingSince = Stopwatch.GetTimestamp();
                    }
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
        _pool.Return(request);
        memory?.Release();
    }
}

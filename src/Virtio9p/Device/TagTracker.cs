namespace VirtFs.Virtio9p.Device;

/// <summary>
/// Tracks which 9P tags have a request in flight so a Tflush is answered only after the request it names
/// (9P flush(5): the server answers the old request or not at all, and Rflush comes last; the Linux client
/// reuses the tag once it has Rflush). Begin is called in ring order on the queue thread, so a Tflush that
/// follows its target in the ring always sees it.
/// </summary>
internal sealed class TagTracker<TRequest>
{
    private readonly int[] _inFlight = new int[ushort.MaxValue + 1];
    private readonly Dictionary<ushort, List<TRequest>> _waitingFlushes = [];
    private readonly Lock _lock = new();

    public void Begin(ushort tag)
    {
        lock (_lock)
        {
            _inFlight[tag]++;
        }
    }

    /// <summary>Parks <paramref name="flush"/> until <paramref name="oldTag"/> completes. False when
    /// nothing with that tag is in flight: the flush can be answered at once.</summary>
    public bool TryParkFlush(ushort oldTag, TRequest flush)
    {
        lock (_lock)
        {
            if (_inFlight[oldTag] == 0)
            {
                return false;
            }
            if (!_waitingFlushes.TryGetValue(oldTag, out List<TRequest>? waiting))
            {
                _waitingFlushes[oldTag] = waiting = [];
            }
            waiting.Add(flush);
            return true;
        }
    }

    /// <summary>Marks one request with <paramref name="tag"/> done; returns the flushes that were waiting
    /// for it, now due, or null.</summary>
    public List<TRequest>? End(ushort tag)
    {
        lock (_lock)
        {
            if (_inFlight[tag] > 0 && --_inFlight[tag] == 0 && _waitingFlushes.Remove(tag, out List<TRequest>? due))
            {
                return due;
            }
            return null;
        }
    }
}

namespace VirtFs.Virtio9p.Device;

/// <summary>
/// Hands requests from the queue thread to a fixed set of worker threads: FIFO items, idle workers woken last-in
/// first-out, one wake-up per item and no spinning. (BlockingCollection's SemaphoreSlim spins and yields in every
/// worker that runs out of work, about ten sched_yield calls per request in tools/bench/device.sh; under TCG that
/// CPU is taken from the guest's vCPU threads. LIFO keeps the few workers a light load needs warm.)
/// </summary>
internal sealed class WorkQueue<T>
{
    /// <summary>One per worker thread; parked in the idle stack while it waits.</summary>
    public sealed class Worker
    {
        // spinCount 0: block at once; the item comes from another thread's wake-up either way.
        internal readonly ManualResetEventSlim Wake = new(false, 0);
    }

    private readonly object _sync = new();
    private readonly Queue<T> _items = new();      // guarded by _sync
    private readonly Stack<Worker> _idle = new();  // guarded by _sync; each worker at most once
    private bool _completed;                       // guarded by _sync

    /// <summary>Queues <paramref name="item"/> and wakes one idle worker; false once <see cref="Complete"/> ran.</summary>
    public bool TryAdd(T item)
    {
        Worker? wake = null;
        lock (_sync)
        {
            if (_completed)
            {
                return false;
            }
            _items.Enqueue(item);
            _idle.TryPop(out wake);
        }
        wake?.Wake.Set(); // outside the lock: the woken worker's first step is to take it
        return true;
    }

    /// <summary>The next item, waiting while there is none; false when completed and empty (the worker ends).</summary>
    public bool TryTake(Worker self, out T item)
    {
        while (true)
        {
            lock (_sync)
            {
                if (_items.TryDequeue(out item!))
                {
                    return true;
                }
                if (_completed)
                {
                    return false;
                }
                // Parked under the lock that TryAdd takes: an item added after this point pops us and sets Wake,
                // so the wait below cannot miss it.
                self.Wake.Reset();
                _idle.Push(self);
            }
            self.Wake.Wait();
        }
    }

    /// <summary>No more items: every worker ends once the queue is empty.</summary>
    public void Complete()
    {
        Worker[] idle;
        lock (_sync)
        {
            _completed = true;
            idle = _idle.ToArray();
            _idle.Clear();
        }
        foreach (Worker worker in idle)
        {
            worker.Wake.Set();
        }
    }
}

namespace VirtFs.VhostUser;

/// <summary>
/// Every access a device makes to guest buffers (a copy, or direct I/O through iovecs) happens inside this gate;
/// when the front-end goes away the connection closes it, waits for the accesses already inside to finish, and
/// unmaps every region of every memory snapshot of the connection, even those an in-flight request still
/// references.
/// <para>
/// Why: once QEMU is gone its memory may belong to something else (a memory-backend-file on hugetlbfs or
/// /dev/shm is reopened by the next VM, and after munmap the same addresses can map the next front-end's
/// memfd). A request blocked in a helper round trip or on a slow filesystem may come back minutes later; it
/// must then find the gate closed and write nothing, and it must not keep a whole guest's RAM mapped while
/// it waits. The queue side (used ring) is fenced separately, by the ring's epoch under its lock.
/// </para>
/// <para>
/// One shared counter: entering costs one interlocked add on a line shared by the workers, as the snapshot's
/// refcount already does per request.
/// </para>
/// </summary>
internal sealed class GuestAccessGate
{
    /// <summary>Set in <see cref="_state"/> once closed; the low bits count accesses inside.</summary>
    private const int ClosedBit = 1 << 30;

    private readonly object _sync = new();
    private readonly List<GuestMemory> _snapshots = new(); // guarded by _sync: snapshots whose regions are still held
    private int _state;

    public bool IsClosed => (Volatile.Read(ref _state) & ClosedBit) != 0;

    /// <summary>Enters for one access; false once the gate is closed (the caller touches nothing).</summary>
    public bool TryEnter()
    {
        int now = Interlocked.Increment(ref _state);
        if ((now & ClosedBit) != 0)
        {
            Interlocked.Decrement(ref _state);
            return false;
        }
        return true;
    }

    public void Exit() => Interlocked.Decrement(ref _state);

    /// <summary>Called by a snapshot that holds its regions; false when the gate is already closed (the
    /// snapshot must then not hold them).</summary>
    internal bool Track(GuestMemory snapshot)
    {
        lock (_sync)
        {
            if (IsClosed)
            {
                return false;
            }
            _snapshots.Add(snapshot);
            return true;
        }
    }

    internal void Untrack(GuestMemory snapshot)
    {
        lock (_sync)
        {
            _snapshots.Remove(snapshot);
        }
    }

    /// <summary>
    /// Closes the gate: no access starts after this returns, the ones inside have finished, and every region of
    /// every snapshot is released (unmapped once nothing else holds it). Accesses are single copies or one
    /// preadv/pwritev, bounded by host I/O, so the wait is short. Idempotent.
    /// </summary>
    public void Close()
    {
        Interlocked.Or(ref _state, ClosedBit);
        var wait = new SpinWait();
        while ((Volatile.Read(ref _state) & ~ClosedBit) != 0)
        {
            wait.SpinOnce(sleep1Threshold: 20);
        }
        GuestMemory[] snapshots;
        lock (_sync)
        {
            snapshots = _snapshots.ToArray();
            _snapshots.Clear();
        }
        foreach (GuestMemory snapshot in snapshots)
        {
            snapshot.DropRegions();
        }
    }
}

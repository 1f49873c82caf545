namespace VirtFs.VhostUser;

/// <summary>
/// An immutable, refcounted snapshot of the memory table. Translates guest-physical (descriptor) and
/// front-end-virtual (vring address) ranges into host pointers with checked math. Whoever holds a reference
/// (the connection, a queue, an in-flight request) keeps every region mapped: a new SET_MEM_TABLE or a
/// new memory table never unmaps memory a worker is still using. A disconnect does, but only after closing
/// the connection's <see cref="GuestAccessGate"/>, through which every access to guest buffers goes.
/// </summary>
internal sealed class GuestMemory
{
    private readonly MappedRegion[] _regions;
    private int _refCount = 1;
    private int _holdsRegions;

    public GuestMemory(IReadOnlyList<MappedRegion> regions, GuestAccessGate? gate = null)
    {
        Gate = gate ?? new GuestAccessGate();
        _regions = new MappedRegion[regions.Count];
        for (int i = 0; i < regions.Count; i++)
        {
            bool added = false;
            regions[i].DangerousAddRef(ref added);
            _regions[i] = regions[i];
        }
        _holdsRegions = 1;
        if (!Gate.Track(this))
        {
            DropRegions(); // born after the front-end left: nothing may reach these regions through it
        }
    }

    public int RegionCount => _regions.Length;

    /// <summary>The connection's gate: hold it (<see cref="GuestAccessGate.TryEnter"/>) around every access to
    /// guest buffers translated through this snapshot.</summary>
    public GuestAccessGate Gate { get; }

    /// <summary>Takes another reference; false if the snapshot is already dead.</summary>
    public bool TryAcquire()
    {
        int current = Volatile.Read(ref _refCount);
        while (current > 0)
        {
            int seen = Interlocked.CompareExchange(ref _refCount, current + 1, current);
            if (seen == current)
            {
                return true;
            }
            current = seen;
        }
        return false;
    }

    public void Release()
    {
        int left = Interlocked.Decrement(ref _refCount);
        if (left == 0)
        {
            Gate.Untrack(this);
            DropRegions();
        }
        else if (left < 0)
        {
            throw new InvalidOperationException("GuestMemory released more often than acquired");
        }
    }

    /// <summary>Gives up this snapshot's hold on its regions, once: at the last release, or when the gate closes
    /// (then no access through this snapshot can happen any more, whoever still references it).</summary>
    internal void DropRegions()
    {
        if (Interlocked.Exchange(ref _holdsRegions, 0) == 0)
        {
            return;
        }
        foreach (MappedRegion r in _regions)
        {
            r.DangerousRelease();
        }
    }

    /// <summary>
    /// Host pointer for the guest-physical range starting at <paramref name="address"/>, limited to what is
    /// contiguous inside one region: <paramref name="available"/> = min(length, bytes to the region's end).
    /// False when the address lies in no region or the length is 0.
    /// </summary>
    public bool TryTranslateGuest(GuestAddress address, ulong length, out nint host, out ulong available)
    {
        foreach (MappedRegion r in _regions)
        {
            ulong a = address.Value;
            if (a >= r.GuestPhysAddr && a - r.GuestPhysAddr < r.Size)
            {
                ulong offset = a - r.GuestPhysAddr;
                available = Math.Min(length, r.Size - offset);
                host = r.HostAddress + (nint)offset;
                return length > 0;
            }
        }
        host = 0;
        available = 0;
        return false;
    }

    /// <summary>
    /// Host pointer for a front-end-virtual range (vring addresses, vhost-user.rst "Vring address description")
    /// that must lie wholly inside one region.
    /// </summary>
    public bool TryTranslateUser(ulong userAddr, ulong length, out nint host)
    {
        foreach (MappedRegion r in _regions)
        {
            if (userAddr >= r.UserAddr && userAddr - r.UserAddr < r.Size)
            {
                ulong offset = userAddr - r.UserAddr;
                if (length > r.Size - offset)
                {
                    break;
                }
                host = r.HostAddress + (nint)offset;
                return true;
            }
        }
        host = 0;
        return false;
    }
}

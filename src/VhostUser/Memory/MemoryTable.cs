namespace VirtFs.VhostUser;

/// <summary>
/// The connection's current memory table. Each change (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG, reset) publishes
/// a new <see cref="GuestMemory"/> snapshot; the old one lives on until its last holder releases it.
/// </summary>
internal sealed class MemoryTable : IDisposable
{
    private readonly object _lock = new();
    private readonly List<MappedRegion> _regions = new();
    private readonly GuestAccessGate _gate;
    private GuestMemory _current;

    public MemoryTable(GuestAccessGate? gate = null)
    {
        _gate = gate ?? new GuestAccessGate();
        _current = new GuestMemory(Array.Empty<MappedRegion>(), _gate);
    }

    /// <summary>The gate every snapshot of this table shares (closed when the front-end goes away).</summary>
    public GuestAccessGate Gate => _gate;

    public int RegionCount
    {
        get
        {
            lock (_lock)
            {
                return _regions.Count;
            }
        }
    }

    /// <summary>The current snapshot, for a cheap "did it change" comparison (no reference taken).</summary>
    public GuestMemory Current => Volatile.Read(ref _current);

    /// <summary>A referenced snapshot; the caller must <see cref="GuestMemory.Release"/> it.</summary>
    public GuestMemory Acquire()
    {
        lock (_lock)
        {
            if (!_current.TryAcquire())
            {
                throw new InvalidOperationException("current memory snapshot already released");
            }
            return _current;
        }
    }

    /// <summary>True if [gpa, gpa+size) or [uaddr, uaddr+size) overlaps a region already present.</summary>
    public bool Overlaps(in MemoryRegionDescription d)
    {
        lock (_lock)
        {
            foreach (MappedRegion r in _regions)
            {
                if (RangesOverlap(r.GuestPhysAddr, r.Size, d.GuestPhysAddr, d.MemorySize)
                    || RangesOverlap(r.UserAddr, r.Size, d.UserAddr, d.MemorySize))
                {
                    return true;
                }
            }
            return false;
        }
    }

    /// <summary>Both ranges are known not to overflow (IsValid).</summary>
    internal static bool RangesOverlap(ulong a, ulong aLen, ulong b, ulong bLen) => a < b + bLen && b < a + aLen;

    public void ReplaceAll(IReadOnlyList<MappedRegion> regions)
    {
        List<MappedRegion> old;
        lock (_lock)
        {
            old = new List<MappedRegion>(_regions);
            _regions.Clear();
            _regions.AddRange(regions);
            PublishLocked();
        }
        old.ForEach(r => r.Dispose());
    }

    public void Add(MappedRegion region)
    {
        lock (_lock)
        {
            _regions.Add(region);
            PublishLocked();
        }
    }

    /// <summary>Removes the region described by <paramref name="d"/>; false if none matches.</summary>
    public bool Remove(in MemoryRegionDescription d)
    {
        MappedRegion? found = null;
        lock (_lock)
        {
            foreach (MappedRegion r in _regions)
            {
                if (r.Matches(d))
                {
                    found = r;
                    break;
                }
            }
            if (found is null)
            {
                return false;
            }
            _regions.Remove(found);
            PublishLocked();
        }
        found.Dispose();
        return true;
    }

    private void PublishLocked()
    {
        GuestMemory old = _current;
        _current = new GuestMemory(_regions, _gate);
        old.Release();
    }

    public void Dispose() => ReplaceAll(Array.Empty<MappedRegion>());
}

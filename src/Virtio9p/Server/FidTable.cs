namespace VirtFs.Virtio9p.Server;

/// <summary>The session's fids. Adding a fid charges the session budget, and renames rewrite paths with the path
/// lock held exclusively (see <see cref="PathLock"/>).
/// <para>
/// A plain dictionary under one short lock, and released fids kept for reuse (<see cref="Rent"/>): a walk and its
/// clunk then allocate nothing (a concurrent dictionary allocates a node per add). Looking a fid up and taking its
/// reference happen under the lock, so a fid found in the table is that fid, never an object released and reused
/// in between: the table's own reference keeps it from being released while it is in the table.
/// </para>
/// </summary>
internal sealed class FidTable(SessionBudget budget)
{
    /// <summary>Released fids kept for reuse; beyond this many they are left to the GC.</summary>
    internal const int SpareFids = 256;

    private readonly Dictionary<uint, Fid> _fids = [];
    private readonly Fid?[] _spare = new Fid?[SpareFids];
    private int _spareCount;
    /// <summary>Guards the dictionary and the spares; never held across anything but their own operations and,
    /// in <see cref="Renamed"/>, a fid's path setter.</summary>
    private readonly Lock _sync = new();

    public int Count
    {
        get
        {
            lock (_sync)
            {
                return _fids.Count;
            }
        }
    }

    /// <summary>Whether the id names a fid (for Twalk's "newfid must be unused"); takes no reference.</summary>
    public bool Contains(uint id)
    {
        lock (_sync)
        {
            return _fids.ContainsKey(id);
        }
    }

    /// <summary>The fid as it stands, without a reference (only to look at its kind before queueing: the object
    /// may be released and reused right after, so whatever it says is a hint the request checks again).</summary>
    public Fid? Peek(uint id)
    {
        lock (_sync)
        {
            return _fids.TryGetValue(id, out Fid? fid) ? fid : null;
        }
    }

    /// <summary>The fid with a request's reference taken (QEMU's get_fid), or null; the caller must
    /// <see cref="Fid.Put"/> it when the request is done.</summary>
    public Fid? Acquire(uint id)
    {
        lock (_sync)
        {
            return _fids.TryGetValue(id, out Fid? fid) && fid.TryAcquire() ? fid : null;
        }
    }

    /// <summary>A fid for <see cref="Add"/>: a released one made new (<see cref="Fid.Reuse"/>) when there is one,
    /// else a new object that comes back here at its last <see cref="Fid.Put"/>.</summary>
    public Fid Rent(uint id, byte[] path, uint uid)
    {
        lock (_sync)
        {
            if (_spareCount > 0)
            {
                Fid fid = _spare[--_spareCount]!;
                _spare[_spareCount] = null;
                fid.Reuse(id, path, uid);
                return fid;
            }
        }
        return new Fid(id, path, uid) { Home = this };
    }

    /// <summary>Takes back a fid whose last reference is gone (called by <see cref="Fid.Put"/>).</summary>
    internal void Recycle(Fid fid)
    {
        lock (_sync)
        {
            if (_spareCount < _spare.Length)
            {
                _spare[_spareCount++] = fid;
            }
        }
    }

    /// <summary>Adds a new fid; fails with EINVAL if the id is in use (9P: newfid must be unused; the errno
    /// QEMU's attach/walk/xattrwalk give when alloc_fid fails), EMFILE when the session holds its most fids,
    /// ENOMEM when their paths take the most bytes.</summary>
    public int Add(Fid fid)
    {
        int charged = budget.TryAddFid(fid.Path.Length);
        if (charged < 0)
        {
            return charged;
        }
        fid.ChargeTo(budget);
        bool added;
        lock (_sync)
        {
            added = _fids.TryAdd(fid.Id, fid);
        }
        if (!added)
        {
            fid.Uncharge();
            return -Errno.EINVAL;
        }
        return 0;
    }

    /// <summary>Takes the fid out of the table; the caller owns the table's reference and must
    /// <see cref="Fid.Put"/> it (requests still using the fid keep it alive until they are done).</summary>
    public Fid? Remove(uint id)
    {
        lock (_sync)
        {
            return _fids.Remove(id, out Fid? fid) ? fid : null;
        }
    }

    public void Clear()
    {
        uint[] ids;
        lock (_sync)
        {
            ids = [.. _fids.Keys];
        }
        foreach (uint id in ids)
        {
            Remove(id)?.Put();
        }
    }

    /// <summary>After a rename of <paramref name="from"/> to <paramref name="to"/>, every fid at or below
    /// the old path now names the new one (QEMU's v9fs_fix_path). The caller holds the path lock exclusively,
    /// so no request is between reading a fid's path and storing a path built from it; the table's lock keeps
    /// every fid it visits in the table (so not released and reused) while its path is rewritten.</summary>
    public void Renamed(byte[] from, byte[] to)
    {
        lock (_sync)
        {
            // Fids that shared one path array (clones, a repeated lookup) share the moved one too.
            Dictionary<byte[], byte[]>? movedOnce = null;
            foreach (Fid fid in _fids.Values)
            {
                byte[] path = fid.Path;
                if (PathNames.IsAtOrBelow(path, from))
                {
                    movedOnce ??= new Dictionary<byte[], byte[]>(ReferenceEqualityComparer.Instance);
                    if (!movedOnce.TryGetValue(path, out byte[]? moved))
                    {
                        moved = new byte[to.Length + path.Length - from.Length];
                        to.CopyTo(moved, 0);
                        path.AsSpan(from.Length).CopyTo(moved.AsSpan(to.Length));
                        movedOnce.Add(path, moved);
                    }
                    fid.Path = moved;
                }
            }
        }
    }

    /// <summary>How many fids name <paramref name="path"/> or a path below it: what a rename of it moves.</summary>
    public int CountAtOrBelow(byte[] path)
    {
        int count = 0;
        lock (_sync)
        {
            foreach (Fid fid in _fids.Values)
            {
                if (PathNames.IsAtOrBelow(fid.Path, path)) count++;
            }
        }
        return count;
    }
}

using System.Collections.Concurrent;

namespace VirtFs.Virtio9p.Server;

/// <summary>The session's fids. Lookups are lock-free; adding a fid charges the session budget, and renames
/// rewrite paths with the path lock held exclusively (see <see cref="PathLock"/>).</summary>
internal sealed class FidTable(SessionBudget budget)
{
    private readonly ConcurrentDictionary<uint, Fid> _fids = new();

    public int Count => _fids.Count;

    /// <summary>Whether the id names a fid (for Twalk's "newfid must be unused"); takes no reference.</summary>
    public bool Contains(uint id) => _fids.ContainsKey(id);

    /// <summary>The fid as it stands, without a reference (only to look at its kind before queueing).</summary>
    public Fid? Peek(uint id) => _fids.TryGetValue(id, out Fid? fid) ? fid : null;

    /// <summary>The fid with a request's reference taken (QEMU's get_fid), or null; the caller must
    /// <see cref="Fid.Put"/> it when the request is done.</summary>
    public Fid? Acquire(uint id) => _fids.TryGetValue(id, out Fid? fid) && fid.TryAcquire() ? fid : null;

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
        if (!_fids.TryAdd(fid.Id, fid))
        {
            fid.Uncharge();
            return -Errno.EINVAL;
        }
        return 0;
    }

    /// <summary>Takes the fid out of the table; the caller owns the table's reference and must
    /// <see cref="Fid.Put"/> it (requests still using the fid keep it alive until they are done).</summary>
    public Fid? Remove(uint id) => _fids.TryRemove(id, out Fid? fid) ? fid : null;

    public void Clear()
    {
        foreach (uint id in _fids.Keys)
        {
            Remove(id)?.Put();
        }
    }

    /// <summary>After a rename of <paramref name="from"/> to <paramref name="to"/>, every fid at or below
    /// the old path now names the new one (QEMU's v9fs_fix_path). The caller holds the path lock exclusively,
    /// so no request is between reading a fid's path and storing a path built from it.</summary>
    public void Renamed(byte[] from, byte[] to)
    {
        foreach (Fid fid in _fids.Values)
        {
            byte[] path = fid.Path;
            if (PathNames.IsAtOrBelow(path, from))
            {
                byte[] moved = new byte[to.Length + path.Length - from.Length];
                to.CopyTo(moved, 0);
                path.AsSpan(from.Length).CopyTo(moved.AsSpan(to.Length));
                fid.Path = moved;
            }
        }
    }
}

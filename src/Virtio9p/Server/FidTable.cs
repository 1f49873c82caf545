using System.Collections.Concurrent;

namespace VirtFs.Virtio9p.Server;

/// <summary>The session's fids. Lookups are lock-free; renames rewrite paths under one lock so two renames
/// cannot interleave their prefix rewrites.</summary>
internal sealed class FidTable
{
    /// <summary>A bound on fids per session: the Linux client uses a handful per open file, a hostile one
    /// must not exhaust our memory.</summary>
    public const int MaxFids = 1 << 20;

    private readonly ConcurrentDictionary<uint, Fid> _fids = new();
    private readonly Lock _renameLock = new();

    public int Count => _fids.Count;

    /// <summary>Whether the id names a fid (for Twalk's "newfid must be unused"); takes no reference.</summary>
    public bool Contains(uint id) => _fids.ContainsKey(id);

    /// <summary>The fid as it stands, without a reference (only to look at its kind before queueing).</summary>
    public Fid? Peek(uint id) => _fids.TryGetValue(id, out Fid? fid) ? fid : null;

    /// <summary>The fid with a request's reference taken (QEMU's get_fid), or null; the caller must
    /// <see cref="Fid.Put"/> it when the request is done.</summary>
    public Fid? Acquire(uint id) => _fids.TryGetValue(id, out Fid? fid) && fid.TryAcquire() ? fid : null;

    /// <summary>Adds a new fid; fails with EINVAL if the id is in use (9P: newfid must be unused; the errno
    /// QEMU's attach/walk/xattrwalk give when alloc_fid fails) or EMFILE when the table is full.</summary>
    public int Add(Fid fid)
    {
        if (_fids.Count >= MaxFids)
        {
            return -24; // EMFILE
        }
        return _fids.TryAdd(fid.Id, fid) ? 0 : -Errno.EINVAL;
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
    /// the old path now names the new one (QEMU's v9fs_fix_path).</summary>
    public void Renamed(byte[] from, byte[] to)
    {
        lock (_renameLock)
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
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VirtFs.Virtio9p.Server;

/// <summary>
/// One host fd per (file, guest lock owner), through which that owner's byte-range locks are taken.
/// <para>
/// POSIX locks belong to a process, not to an open file: a guest process that locks a file through two
/// fds (two fids here) must not conflict with itself, and unlocking through either fd releases the range.
/// Two processes sharing one fd after fork are two owners and must conflict. Host open-file-description
/// locks give exactly that when every owner has an open file description of its own, shared by all the
/// fids it locks through. The owner is what Tlock names: proc_id (the guest's tgid) and client_id (its
/// node name).
/// </para>
/// <para>
/// An owner's fd stays open while any fid that locked through it is open, so its locks last until the
/// guest unlocks them (Linux sends an unlock of the whole file when the process closes any fd of it, as
/// POSIX requires) or the last such fid is clunked, or the session ends.
/// </para>
/// </summary>
internal sealed class LockOwners
{
    /// <summary>Owners holding an fd at once. A real guest has a few per locked file; a hostile one could name a
    /// new proc_id in every Tlock and run the backend out of fds. Past this, new owners get ENOLCK.</summary>
    public const int MaxOwners = 4096;

    /// <summary>(fid, owner) references, all fids together: each open fid could otherwise list every owner, 16 384
    /// fids x 4 096 owners. A real guest has one or a few per fid (a prefork server's children locking one
    /// inherited fd: one per child). Past this, new references get ENOLCK.</summary>
    public const int MaxReferences = 65_536;

    private int _references;

    private readonly Dictionary<LockOwnerKey, Entry> _entries = new();
    private readonly object _sync = new();

    /// <summary>Owners currently holding an fd (for tests and statistics).</summary>
    public int Count
    {
        get
        {
            lock (_sync)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>
    /// The fd of an owner that already exists, or null (the owner then holds no lock on the file). The caller's
    /// fid need not reference the owner (an unlock or a query through another fid of the same process), so the
    /// last fid that does may be clunked meanwhile and close the fd: the handle comes with a reference taken
    /// under the table's lock, which the caller gives back with <see cref="SafeHandle.DangerousRelease"/>.
    /// </summary>
    public SafeFileHandle? FindAndAddRef(in LockOwnerKey key)
    {
        lock (_sync)
        {
            if (!_entries.TryGetValue(key, out Entry? entry))
            {
                return null;
            }
            // Cannot fail: an entry's fd is disposed only under _sync, after the entry left the table.
            bool added = false;
            entry.Handle.DangerousAddRef(ref added);
            return entry.Handle;
        }
    }

    /// <summary>
    /// Takes a reference on the owner's fd for <paramref name="fid"/> (once per fid), creating the owner with
    /// <paramref name="open"/> when it is new. <paramref name="open"/> may block on the helper, so it runs
    /// outside the table's lock; when two fids race to create one owner, the loser's fd is closed. Null when
    /// the fd cannot be had, or (<paramref name="full"/>) the table holds <see cref="MaxOwners"/> owners or
    /// <see cref="MaxReferences"/> references already.
    /// </summary>
    public SafeFileHandle? Acquire(Fid fid, in LockOwnerKey key, Func<SafeFileHandle?> open, out bool full)
    {
        full = false;
        bool referenced = fid.LockOwners?.Contains(key) == true;
        lock (_sync)
        {
            if (!referenced && _references >= MaxReferences)
            {
                full = true;
                return null;
            }
            if (_entries.TryGetValue(key, out Entry? existing))
            {
                return Reference(fid, existing, referenced);
            }
            if (_entries.Count >= MaxOwners)
            {
                full = true;
                return null;
            }
        }
        SafeFileHandle? handle = open();
        if (handle is null)
        {
            return null;
        }
        lock (_sync)
        {
            if (_entries.TryGetValue(key, out Entry? raced))
            {
                handle.Dispose();
                return Reference(fid, raced, referenced);
            }
            var entry = new Entry(key, handle);
            _entries.Add(key, entry);
            return Reference(fid, entry, referenced);
        }
    }

    /// <summary>Drops <paramref name="fid"/>'s references (at clunk); an owner no fid references is closed,
    /// which releases whatever it still held.</summary>
    public void Release(Fid fid)
    {
        List<LockOwnerKey>? keys = fid.LockOwners;
        if (keys is null)
        {
            return;
        }
        fid.LockOwners = null;
        lock (_sync)
        {
            _references -= keys.Count;
            foreach (LockOwnerKey key in keys)
            {
                if (_entries.TryGetValue(key, out Entry? entry) && --entry.References == 0)
                {
                    _entries.Remove(key);
                    entry.Handle.Dispose();
                }
            }
        }
    }

    private SafeFileHandle Reference(Fid fid, Entry entry, bool referenced)
    {
        if (!referenced)
        {
            entry.References++;
            _references++;
            // The entry's own key: its client_id string is shared, not one more string per request.
            (fid.LockOwners ??= []).Add(entry.Key);
            fid.LockTable = this;
        }
        return entry.Handle;
    }

    private sealed class Entry(LockOwnerKey key, SafeFileHandle handle)
    {
        public LockOwnerKey Key { get; } = key;
        public SafeFileHandle Handle { get; } = handle;
        public int References { get; set; }
    }
}

/// <summary>A guest lock owner on one host file: the file by device and inode (so hard links and renamed
/// paths meet), the owner by Tlock's proc_id and client_id.</summary>
internal readonly record struct LockOwnerKey(ulong Device, ulong Inode, uint ProcId, string ClientId);

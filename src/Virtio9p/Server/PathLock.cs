using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

/// <summary>
/// The session's rename lock (QEMU's rename_lock with v9fs_path_read_lock/write_lock). A request that reads a
/// fid's path and acts on it (a walk storing the new fid's path, a create storing the new file's, any host call
/// by path) holds it shared from first read to last store; Trename and Trenameat hold it exclusively across
/// the host rename and the rewrite of every fid below the old name. So no fid can keep a pre-rename path,
/// and no host call runs on a path a concurrent rename just made stale.
/// <para>
/// What never waits on it: Tread, Twrite, Tfsync, Treaddir and Tgetlock work on the fid's open fd, and
/// Tversion, Tflush, Tattach and Txattrcreate build no path from a fid. A holder never waits on another
/// request: lock requests answer BLOCKED instead of parking, opens never block on fifos or leases, and helper
/// connections are leased only inside the lock, so whoever waits for one waits for a holder that finishes.
/// Taken once per request, in <see cref="P9Server.Serve"/>, before any fid's <see cref="Fid.Sync"/>
/// (lock order: path lock, then fid), never recursively.
/// </para>
/// </summary>
internal sealed class PathLock
{
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);

    /// <summary>Renames waiting for or holding the lock exclusively.</summary>
    private int _renames;

    /// <summary>
    /// Whether a rename waits for or holds the lock. The queue thread serves a shared-lock request itself
    /// (Tgetattr, Tclunk on open fids: <see cref="P9Server.IsNonBlocking"/>) only while this is false, so the ring
    /// does not wait behind a rename's helper round trip; a rename that starts between the check and the shared
    /// Enter can still make it wait, for at most that one rename.
    /// </summary>
    public bool RenamePending => Volatile.Read(ref _renames) > 0;

    public enum Use
    {
        None,
        Shared,
        Exclusive,
    }

    /// <summary>How a request of this type uses fid paths.</summary>
    public static Use For(P9MessageType type) => type switch
    {
        P9MessageType.Trename or P9MessageType.Trenameat => Use.Exclusive,
        P9MessageType.Twalk or P9MessageType.Tlopen or P9MessageType.Tlcreate or P9MessageType.Tgetattr
            or P9MessageType.Tsetattr or P9MessageType.Tstatfs or P9MessageType.Tmkdir or P9MessageType.Tmknod
            or P9MessageType.Tsymlink or P9MessageType.Treadlink or P9MessageType.Tlink
            or P9MessageType.Tunlinkat or P9MessageType.Tremove or P9MessageType.Txattrwalk
            or P9MessageType.Tclunk /* commits a Txattrcreate by path */
            or P9MessageType.Tlock /* reopens the file by path for a new lock owner */ => Use.Shared,
        _ => Use.None,
    };

    public void Enter(Use use)
    {
        if (use == Use.Shared)
        {
            _lock.EnterReadLock();
        }
        else if (use == Use.Exclusive)
        {
            Interlocked.Increment(ref _renames);
            _lock.EnterWriteLock();
        }
    }

    public void Exit(Use use)
    {
        if (use == Use.Shared)
        {
            _lock.ExitReadLock();
        }
        else if (use == Use.Exclusive)
        {
            _lock.ExitWriteLock();
            Interlocked.Decrement(ref _renames);
        }
    }
}

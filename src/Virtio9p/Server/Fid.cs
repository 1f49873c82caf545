using Microsoft.Win32.SafeHandles;

namespace VirtFs.Virtio9p.Server;

/// <summary>
/// A guest fid: the path it names, who attached it, and what it holds open. Fields a request changes
/// are guarded by <see cref="Sync"/>.
/// <para>
/// Refcounted per request, as QEMU's get_fid/put_fid (hw/9pfs/9p.c): the table holds one reference and every
/// request using the fid holds one from lookup to reply. Tclunk, Tremove, Tversion and an xattr replace take the
/// fid out of the table at once and drop the table's reference; the open file, the xattr buffer and the lock
/// owners are released when the last request using the fid is done, so a request never finds its fid's
/// resources gone under it. A lookup that loses the race with the last release finds no fid (ENOENT), as a
/// lookup after the clunk would.
/// </para>
/// <para>
/// Reused (<see cref="FidTable.Rent"/>): a walk makes a fid and a clunk drops it hundreds of thousands of times in a
/// metadata-heavy run, so a released fid goes back to its table and the next walk takes it instead of allocating.
/// Only after its last reference, so no request can still be using it. What may still hold the object without a
/// reference is told apart by <see cref="Generation"/>: the walk attributes' owner (compared by object and
/// generation) and a <see cref="FidTable.Peek"/> (a hint for queueing, checked again under a reference).
/// </para>
/// </summary>
internal sealed class Fid(uint id, byte[] path, uint uid)
{
    /// <summary>The table's reference plus one per request using the fid; 0 once released (above again only when
    /// <see cref="Reuse"/> makes it a new fid).</summary>
    private int _references = 1;

    public uint Id { get; private set; } = id;

    /// <summary>How many times this object has been a fid before (see <see cref="Reuse"/>): an object and its
    /// generation name one fid for good.</summary>
    public long Generation { get; private set; }

    /// <summary>The table the object goes back to at its last <see cref="Put"/>; null: it is left to the GC.</summary>
    public FidTable? Home { get; init; }

    private byte[] _path = path;

    /// <summary>The session budget this fid is charged to (set when it enters the table, cleared when its
    /// last reference goes); guarded by <see cref="_budgetSync"/>, which is never held across anything else.</summary>
    private SessionBudget? _budget;
    private readonly Lock _budgetSync = new();
    private bool _openFileCharged;
    private long _xattrCharged;

    /// <summary>Export-relative path. Replaced (never mutated in place) when a rename moves the file or a
    /// directory above it, so the fid follows the file. Read and set under the server's path lock
    /// (<see cref="PathLock"/>): shared for requests that build paths, exclusive for renames.</summary>
    public byte[] Path
    {
        get => Volatile.Read(ref _path);
        set
        {
            lock (_budgetSync)
            {
                _budget?.ResizePath(value.Length - _path.Length);
                Volatile.Write(ref _path, value);
            }
        }
    }

    /// <summary>The guest user the fid was attached for (n_uname with access=user): owner of what it creates.</summary>
    public uint Uid { get; private set; } = uid;

    public object Sync => this;

    public FidKind Kind { get; set; } = FidKind.Path;

    /// <summary>The host file from Tlopen/Tlcreate, received from the helper.</summary>
    public SafeFileHandle? Handle { get; set; }

    /// <summary>The file's filesystem refused RWF_NOWAIT (EOPNOTSUPP): the queue thread cannot tell a cached read
    /// from one that waits on the disk, so every Tread on this fid goes to a worker.</summary>
    public bool ReadsMayBlock { get; set; }

    /// <summary>Host open flags of <see cref="Handle"/> (access mode tells whether ftruncate may use it).</summary>
    public int OpenFlags { get; set; }

    /// <summary>Where the directory fd's kernel offset stands, so Treaddir seeks only when the guest asks
    /// for another offset than the one we left it at.</summary>
    public long DirectoryOffset { get; set; }

    /// <summary>Txattrwalk: the value (or name list) read; Txattrcreate: the value being written.</summary>
    public XattrState? Xattr { get; set; }

    /// <summary>Device and inode of <see cref="Handle"/>, read at the first lock request: the file part of
    /// a <see cref="LockOwnerKey"/>.</summary>
    public (ulong Device, ulong Inode)? FileIdentity { get; set; }

    /// <summary>The lock owners this fid has locked for (see <see cref="Server.LockOwners"/>), usually one,
    /// and the table they live in; released with the fid.</summary>
    public List<LockOwnerKey>? LockOwners { get; set; }

    public LockOwners? LockTable { get; set; }

    /// <summary>From now on the fid's path, open file and xattr value count against <paramref name="budget"/>
    /// (the fid itself was charged by the caller); all of it is given back at the last <see cref="Put"/>.</summary>
    public void ChargeTo(SessionBudget budget)
    {
        lock (_budgetSync)
        {
            _budget = budget;
        }
    }

    /// <summary>Gives back the fid's own charge (count and path) without releasing anything it holds: for a
    /// fid that was charged but did not make it into the table.</summary>
    public void Uncharge()
    {
        lock (_budgetSync)
        {
            _budget?.ReleaseFid(_path.Length);
            _budget = null;
        }
    }

    /// <summary>Stores the host file opened for the fid, whose slot the caller took with
    /// <see cref="SessionBudget.TryOpenFile"/>. Under <see cref="Sync"/>.</summary>
    public void HoldOpenFile(SafeFileHandle handle)
    {
        Handle = handle;
        _openFileCharged = true;
    }

    /// <summary>Stores an xattr value whose bytes the caller reserved with
    /// <see cref="SessionBudget.TryReserveXattr"/>. Under <see cref="Sync"/>, or before the fid is shared.</summary>
    public void HoldXattr(XattrState state)
    {
        Xattr = state;
        _xattrCharged = state.Value.Length;
    }

    /// <summary>Takes a request's reference; false when the fid was already released (clunked and idle).</summary>
    public bool TryAcquire()
    {
        int seen = Volatile.Read(ref _references);
        while (seen > 0)
        {
            int before = Interlocked.CompareExchange(ref _references, seen + 1, seen);
            if (before == seen)
            {
                return true;
            }
            seen = before;
        }
        return false;
    }

    /// <summary>Makes a released object a new fid: everything as a fresh <c>new Fid(id, path, uid)</c>, one
    /// generation later. Only <see cref="FidTable.Rent"/> calls it, on an object whose last <see cref="Put"/>
    /// has returned, before the fid is shared.</summary>
    public void Reuse(uint id, byte[] path, uint uid)
    {
        if (Volatile.Read(ref _references) != 0)
        {
            throw new InvalidOperationException($"fid {Id} reused while referenced");
        }
        Id = id;
        Uid = uid;
        _path = path;
        Generation++;
        Kind = FidKind.Path;
        ReadsMayBlock = false;
        OpenFlags = 0;
        DirectoryOffset = 0;
        FileIdentity = null;
        // Put released these; cleared again so that nothing of the last fid can leak into this one.
        Handle = null;
        Xattr = null;
        LockOwners = null;
        LockTable = null;
        Volatile.Write(ref _references, 1);
    }

    /// <summary>Drops a reference (a request's, or the table's when the fid leaves the table); the last one
    /// releases what the fid holds and gives the object back to its table. The caller must not touch the fid
    /// after its last Put.</summary>
    public void Put()
    {
        int left = Interlocked.Decrement(ref _references);
        if (left == 0)
        {
            lock (Sync)
            {
                LockTable?.Release(this);
                Handle?.Dispose();
                Handle = null;
                Xattr = null;
                lock (_budgetSync)
                {
                    if (_openFileCharged)
                    {
                        _budget?.ReleaseOpenFile();
                        _openFileCharged = false;
                    }
                    _budget?.ReleaseXattr(_xattrCharged);
                    _xattrCharged = 0;
                }
                Uncharge();
            }
            Home?.Recycle(this);
        }
        else if (left < 0)
        {
            throw new InvalidOperationException($"fid {Id} released more often than acquired");
        }
    }
}

internal enum FidKind
{
    /// <summary>Names a file; nothing open.</summary>
    Path,
    OpenFile,
    OpenDirectory,
    XattrRead,
    XattrWrite,
}

internal sealed class XattrState(byte[] name, byte[] value, int flags)
{
    public byte[] Name { get; } = name;
    public byte[] Value { get; } = value;
    public int Flags { get; } = flags;
    /// <summary>Bytes received so far for Txattrcreate; the value is set at clunk only when complete.</summary>
    public int Written { get; set; }
}

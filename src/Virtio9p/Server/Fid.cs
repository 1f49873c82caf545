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
/// </summary>
internal sealed class Fid(uint id, byte[] path, uint uid)
{
    /// <summary>The table's reference plus one per request using the fid; 0 once released (never again above).</summary>
    private int _references = 1;

    public uint Id { get; } = id;

    /// <summary>Export-relative path. Replaced (never mutated in place) when a rename moves the file or a
    /// directory above it, so the fid follows the file.</summary>
    public byte[] Path { get; set; } = path;

    /// <summary>The guest user the fid was attached for (n_uname with access=user): owner of what it creates.</summary>
    public uint Uid { get; } = uid;

    public object Sync => this;

    public FidKind Kind { get; set; } = FidKind.Path;

    /// <summary>The host file from Tlopen/Tlcreate, received from the helper.</summary>
    public SafeFileHandle? Handle { get; set; }

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

    /// <summary>Drops a reference (a request's, or the table's when the fid leaves the table); the last one
    /// releases what the fid holds.</summary>
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
            }
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

namespace VirtFs.Virtio9p.Server;

/// <summary>
/// The running totals behind <see cref="SessionLimits"/>. A charge that would pass its limit is refused and
/// leaves the total as it was; what a fid holds is given back when the fid's last reference goes
/// (<see cref="Fid.Put"/>), so Tclunk, Tremove, Tversion and an xattr replace all return it. Lock-free: one
/// interlocked add per charge.
/// </summary>
internal sealed class SessionBudget(SessionLimits limits)
{
    private long _fids;
    private long _openFiles;
    private long _xattrBytes;
    private long _pathBytes;

    public SessionLimits Limits { get; } = limits;

    public long Fids => Volatile.Read(ref _fids);
    public long OpenFiles => Volatile.Read(ref _openFiles);
    public long XattrBytes => Volatile.Read(ref _xattrBytes);
    public long PathBytes => Volatile.Read(ref _pathBytes);

    /// <summary>A new fid naming a path of <paramref name="pathLength"/> bytes: 0, or EMFILE/ENOMEM.</summary>
    public int TryAddFid(int pathLength)
    {
        if (!TryCharge(ref _fids, 1, Limits.MaxFids))
        {
            return -Errno.EMFILE;
        }
        if (!TryCharge(ref _pathBytes, pathLength, Limits.MaxPathBytes))
        {
            Interlocked.Decrement(ref _fids);
            return -Errno.ENOMEM;
        }
        return 0;
    }

    public void ReleaseFid(int pathLength)
    {
        Interlocked.Decrement(ref _fids);
        Interlocked.Add(ref _pathBytes, -pathLength);
    }

    /// <summary>A fid's path changed length (walk in place, Tlcreate, a rename above it). Never refused: a
    /// rename done on the host must be followed by every fid, so a rename checks <see cref="HasRoomForPaths"/>
    /// for all of them before it is done. Where the total passes the limit, the next new fid is refused.</summary>
    public void ResizePath(int delta) => Interlocked.Add(ref _pathBytes, delta);

    /// <summary>Whether the paths may grow by <paramref name="bytes"/> more (a rename checks before it is done: the
    /// fids below the renamed name all follow it, <see cref="ResizePath"/>).</summary>
    public bool HasRoomForPaths(long bytes) => PathBytes + bytes <= Limits.MaxPathBytes;

    /// <summary>A host file about to be opened for a fid: true when the session may hold one more.</summary>
    public bool TryOpenFile() => TryCharge(ref _openFiles, 1, Limits.MaxOpenFiles);

    public void ReleaseOpenFile() => Interlocked.Decrement(ref _openFiles);

    /// <summary>An xattr value of <paramref name="bytes"/> about to be held by a fid.</summary>
    public bool TryReserveXattr(long bytes) => TryCharge(ref _xattrBytes, bytes, Limits.MaxXattrBytes);

    public void ReleaseXattr(long bytes) => Interlocked.Add(ref _xattrBytes, -bytes);

    private static bool TryCharge(ref long total, long amount, long limit)
    {
        long after = Interlocked.Add(ref total, amount);
        if (after <= limit)
        {
            return true;
        }
        Interlocked.Add(ref total, -amount);
        return false;
    }
}

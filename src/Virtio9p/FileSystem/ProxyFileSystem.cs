using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using VirtFs.ProxyFs;

namespace VirtFs.Virtio9p.FileSystem;

/// <summary>
/// <see cref="IFileSystem"/> over the privileged helper's proxy socket. Each call rents one connection from
/// the pool (the protocol is one request at a time per socket, so the pool is what lets metadata requests
/// run in parallel). A lost connection becomes -EIO for that request; the pool reconnects on a later call.
/// </summary>
public sealed class ProxyFileSystem(ProxyClientPool pool, ILogger logger) : IFileSystem
{
    public int Open(ReadOnlySpan<byte> path, int flags, out SafeFileHandle? fd)
    {
        fd = null;
        try
        {
            using ProxyClientLease lease = pool.Rent();
            int result = lease.Client.Open(path, flags, out fd);
            Reachable();
            return result;
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Create(ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid, out SafeFileHandle? fd)
    {
        fd = null;
        try
        {
            using ProxyClientLease lease = pool.Rent();
            int result = lease.Client.Create(path, flags, mode, uid, gid, out fd);
            Reachable();
            return result;
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Mkdir(ReadOnlySpan<byte> path, uint mode, uint uid, uint gid) =>
        Invoke(new PathArgs(path) { Mode = mode, Uid = uid, Gid = gid }, static (c, a) => c.Mkdir(a.Path, a.Mode, a.Uid, a.Gid));

    public int Mknod(ReadOnlySpan<byte> path, uint mode, ulong rdev, uint uid, uint gid) =>
        Invoke(new PathArgs(path) { Mode = mode, Device = rdev, Uid = uid, Gid = gid }, static (c, a) => c.Mknod(a.Path, a.Mode, a.Device, a.Uid, a.Gid));

    public int Symlink(ReadOnlySpan<byte> target, ReadOnlySpan<byte> linkPath, uint uid, uint gid) =>
        Invoke(new PathArgs(linkPath) { Second = target, Uid = uid, Gid = gid }, static (c, a) => c.Symlink(a.Second, a.Path, a.Uid, a.Gid));

    public int Link(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath) =>
        Invoke(new PathArgs(oldPath) { Second = newPath }, static (c, a) => c.Link(a.Path, a.Second));

    public int Lstat(ReadOnlySpan<byte> path, out FileStat attributes)
    {
        attributes = default;
        try
        {
            using ProxyClientLease lease = pool.Rent();
            int result = lease.Client.Lstat(path, out ProxyStat stat);
            Reachable();
            if (result >= 0)
            {
                attributes = FileStat.FromProxy(stat);
            }
            return result;
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Readlink(ReadOnlySpan<byte> path, Span<byte> buffer) =>
        Invoke(new PathArgs(path) { Buffer = buffer }, static (c, a) => c.Readlink(a.Path, a.Buffer));

    public int Statfs(ReadOnlySpan<byte> path, out FileSystemStats stats)
    {
        stats = default;
        try
        {
            using ProxyClientLease lease = pool.Rent();
            int result = lease.Client.Statfs(path, out ProxyStatFs s);
            Reachable();
            if (result >= 0)
            {
                stats = new FileSystemStats((uint)s.Type, (uint)s.Bsize, s.Blocks, s.Bfree, s.Bavail, s.Files,
                    s.Ffree, (s.Fsid0 & 0xffffffff) | (s.Fsid1 << 32), (uint)s.Namelen);
            }
            return result;
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Chmod(ReadOnlySpan<byte> path, uint mode) =>
        Invoke(new PathArgs(path) { Mode = mode }, static (c, a) => c.Chmod(a.Path, a.Mode));

    public int Chown(ReadOnlySpan<byte> path, uint uid, uint gid) =>
        Invoke(new PathArgs(path) { Uid = uid, Gid = gid }, static (c, a) => c.Chown(a.Path, a.Uid, a.Gid));

    public int Truncate(ReadOnlySpan<byte> path, long size) =>
        Invoke(new PathArgs(path) { Length = size }, static (c, a) => c.Truncate(a.Path, a.Length));

    public int Utime(ReadOnlySpan<byte> path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec) =>
        Invoke(new PathArgs(path) { AtimeSec = atimeSec, AtimeNsec = atimeNsec, MtimeSec = mtimeSec, MtimeNsec = mtimeNsec },
            static (c, a) => c.Utime(a.Path, a.AtimeSec, a.AtimeNsec, a.MtimeSec, a.MtimeNsec));

    public int Rename(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath) =>
        Invoke(new PathArgs(oldPath) { Second = newPath }, static (c, a) => c.Rename(a.Path, a.Second));

    public int Remove(ReadOnlySpan<byte> path) =>
        Invoke(new PathArgs(path), static (c, a) => c.Remove(a.Path));

    public int GetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, Span<byte> value) =>
        Invoke(new PathArgs(path) { Second = name, Buffer = value }, static (c, a) => c.GetXattr(a.Path, a.Second, a.Buffer));

    public int ListXattr(ReadOnlySpan<byte> path, Span<byte> list) =>
        Invoke(new PathArgs(path) { Buffer = list }, static (c, a) => c.ListXattr(a.Path, a.Buffer));

    public int SetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags) =>
        Invoke(new PathArgs(path) { Second = name, Buffer = MemoryMarshalSpan(value), XattrFlags = flags }, static (c, a) => c.SetXattr(a.Path, a.Second, a.Buffer, a.XattrFlags));

    public int RemoveXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name) =>
        Invoke(new PathArgs(path) { Second = name }, static (c, a) => c.RemoveXattr(a.Path, a.Second));

    /// <summary>Runs one request on a pooled connection. Static lambdas and a by-value ref struct of
    /// arguments: nothing is allocated per call.</summary>
    private int Invoke(PathArgs args, Func<ProxyClient, PathArgs, int> operation)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            int result = operation(lease.Client, args);
            Reachable();
            return result;
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    /// <summary>The arguments of a path operation, passed through <see cref="Invoke"/> without a closure.
    /// Each operation sets the fields it sends and leaves the rest at zero.</summary>
    private readonly ref struct PathArgs(ReadOnlySpan<byte> path)
    {
        public readonly ReadOnlySpan<byte> Path = path;
        /// <summary>The second path (link and rename: the new path; symlink: the target) or an xattr name.</summary>
        public ReadOnlySpan<byte> Second { get; init; }
        /// <summary>mkdir, mknod, chmod.</summary>
        public uint Mode { get; init; }
        /// <summary>The owner a create (mkdir, mknod, symlink) or chown asks for.</summary>
        public uint Uid { get; init; }
        public uint Gid { get; init; }
        /// <summary>mknod: the device number.</summary>
        public ulong Device { get; init; }
        /// <summary>truncate: the new length.</summary>
        public long Length { get; init; }
        /// <summary>utime: the two timestamps.</summary>
        public long AtimeSec { get; init; }
        public long AtimeNsec { get; init; }
        public long MtimeSec { get; init; }
        public long MtimeNsec { get; init; }
        /// <summary>setxattr: XATTR_CREATE / XATTR_REPLACE.</summary>
        public int XattrFlags { get; init; }
        /// <summary>A reply buffer (readlink, getxattr) or, read-only, a value to send (setxattr).</summary>
        public Span<byte> Buffer { get; init; }
    }

    /// <summary>SetXattr only reads its value; PathArgs carries one buffer type for both directions.</summary>
    private static Span<byte> MemoryMarshalSpan(ReadOnlySpan<byte> value) =>
        System.Runtime.InteropServices.MemoryMarshal.CreateSpan(
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(value), value.Length);

    /// <summary>Requests failed since the helper was last reachable; logged once per outage, not once per
    /// request (a busy guest would otherwise write thousands of identical lines while the helper is down).</summary>
    private int _failedSinceLoss;

    private int Lost(ProxyConnectionException e)
    {
        if (Interlocked.Increment(ref _failedSinceLoss) == 1)
        {
            logger.LogWarning("helper connection lost: {Reason}; requests fail with EIO until it is back", e.Message);
        }
        return -Errno.EIO;
    }

    /// <summary>Called after any request that reached the helper.</summary>
    private void Reachable()
    {
        if (Volatile.Read(ref _failedSinceLoss) == 0)
        {
            return; // the common case: a plain read, no shared-cache-line write per request
        }
        int failed = Interlocked.Exchange(ref _failedSinceLoss, 0);
        if (failed != 0)
        {
            logger.LogInformation("helper reachable again; {Failed} requests failed with EIO meanwhile", failed);
        }
    }
}

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
    private const int EIO = 5;

    public int Open(ReadOnlySpan<byte> path, int flags, out SafeFileHandle? fd)
    {
        fd = null;
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Open(path, flags, out fd);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Create(ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid, out SafeFileHandle? fd)
    {
        fd = null;
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Create(path, flags, mode, uid, gid, out fd);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Mkdir(ReadOnlySpan<byte> path, uint mode, uint uid, uint gid)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Mkdir(path, mode, uid, gid);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Mknod(ReadOnlySpan<byte> path, uint mode, ulong rdev, uint uid, uint gid)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Mknod(path, mode, rdev, uid, gid);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Symlink(ReadOnlySpan<byte> target, ReadOnlySpan<byte> linkPath, uint uid, uint gid)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Symlink(target, linkPath, uid, gid);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Link(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Link(oldPath, newPath);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Lstat(ReadOnlySpan<byte> path, out FileStat attributes)
    {
        attributes = default;
        try
        {
            using ProxyClientLease lease = pool.Rent();
            int result = lease.Client.Lstat(path, out ProxyStat stat);
            if (result >= 0)
            {
                attributes = FileStat.FromProxy(stat);
            }
            return result;
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Readlink(ReadOnlySpan<byte> path, Span<byte> buffer)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Readlink(path, buffer);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Statfs(ReadOnlySpan<byte> path, out FileSystemStats stats)
    {
        stats = default;
        try
        {
            using ProxyClientLease lease = pool.Rent();
            int result = lease.Client.Statfs(path, out ProxyStatFs s);
            if (result >= 0)
            {
                stats = new FileSystemStats((uint)s.Type, (uint)s.Bsize, s.Blocks, s.Bfree, s.Bavail, s.Files,
                    s.Ffree, (s.Fsid0 & 0xffffffff) | (s.Fsid1 << 32), (uint)s.Namelen);
            }
            return result;
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Chmod(ReadOnlySpan<byte> path, uint mode)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Chmod(path, mode);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Chown(ReadOnlySpan<byte> path, uint uid, uint gid)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Chown(path, uid, gid);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Truncate(ReadOnlySpan<byte> path, long size)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Truncate(path, size);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Utime(ReadOnlySpan<byte> path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Utime(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Rename(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Rename(oldPath, newPath);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int Remove(ReadOnlySpan<byte> path)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.Remove(path);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int GetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, Span<byte> value)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.GetXattr(path, name, value);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int ListXattr(ReadOnlySpan<byte> path, Span<byte> list)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.ListXattr(path, list);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int SetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.SetXattr(path, name, value, flags);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    public int RemoveXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            return lease.Client.RemoveXattr(path, name);
        }
        catch (ProxyConnectionException e) { return Lost(e); }
    }

    private int Lost(ProxyConnectionException e)
    {
        logger.LogWarning("helper connection lost: {Reason}; request fails with EIO", e.Message);
        return -EIO;
    }
}

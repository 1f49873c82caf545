using Microsoft.Win32.SafeHandles;
using VirtFs.Virtio9p.FileSystem;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>
/// A filesystem that hands every call to <paramref name="inner"/>: the base of the tests' wrappers, which override
/// only the calls they count, hold or alter (one copy of the forwarding list, so a new IFileSystem member is
/// forwarded everywhere at once).
/// </summary>
internal abstract class ForwardingFileSystem(IFileSystem inner) : IFileSystem
{
    protected IFileSystem Inner => inner;

    public virtual int Open(ReadOnlySpan<byte> path, int flags, out SafeFileHandle? fd) => inner.Open(path, flags, out fd);
    public virtual int Create(ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid, out SafeFileHandle? fd) => inner.Create(path, flags, mode, uid, gid, out fd);
    public virtual int Mkdir(ReadOnlySpan<byte> path, uint mode, uint uid, uint gid) => inner.Mkdir(path, mode, uid, gid);
    public virtual int Mknod(ReadOnlySpan<byte> path, uint mode, ulong rdev, uint uid, uint gid) => inner.Mknod(path, mode, rdev, uid, gid);
    public virtual int Symlink(ReadOnlySpan<byte> target, ReadOnlySpan<byte> linkPath, uint uid, uint gid) => inner.Symlink(target, linkPath, uid, gid);
    public virtual int Link(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath) => inner.Link(oldPath, newPath);
    public virtual int Lstat(ReadOnlySpan<byte> path, out FileStat attributes) => inner.Lstat(path, out attributes);
    public virtual int Readlink(ReadOnlySpan<byte> path, Span<byte> buffer) => inner.Readlink(path, buffer);
    public virtual int Statfs(ReadOnlySpan<byte> path, out FileSystemStats stats) => inner.Statfs(path, out stats);
    public virtual int Chmod(ReadOnlySpan<byte> path, uint mode) => inner.Chmod(path, mode);
    public virtual int Chown(ReadOnlySpan<byte> path, uint uid, uint gid) => inner.Chown(path, uid, gid);
    public virtual int Truncate(ReadOnlySpan<byte> path, long size) => inner.Truncate(path, size);
    public virtual int Utime(ReadOnlySpan<byte> path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec) => inner.Utime(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec);
    public virtual int Rename(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath) => inner.Rename(oldPath, newPath);
    public virtual int Remove(ReadOnlySpan<byte> path) => inner.Remove(path);
    public virtual int GetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, Span<byte> value) => inner.GetXattr(path, name, value);
    public virtual int ListXattr(ReadOnlySpan<byte> path, Span<byte> list) => inner.ListXattr(path, list);
    public virtual int SetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags) => inner.SetXattr(path, name, value, flags);
    public virtual int RemoveXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name) => inner.RemoveXattr(path, name);
    public virtual int MapOpenStat(SafeFileHandle handle, ref FileStat attributes) => inner.MapOpenStat(handle, ref attributes);
    public virtual bool HidesHostFileTypes => inner.HidesHostFileTypes;
}

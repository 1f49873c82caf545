using Microsoft.Win32.SafeHandles;
using VirtFs.Virtio9p.FileSystem;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>A filesystem that can hold one Open (or Lstat, or Create) until the test lets it go, to put another
/// request deterministically in the middle of a handler.</summary>
internal sealed class GatedFileSystem(IFileSystem inner) : IFileSystem
{
    public enum Operation { Open, Lstat, Create }

    /// <summary>When set, the next <see cref="GateOn"/> operation signals <see cref="Entered"/>, waits for
    /// <see cref="Release"/>, then (an Open) answers <see cref="OpenResult"/> or does the real call when that is 0.</summary>
    public volatile bool Armed;
    public Operation GateOn = Operation.Open;
    public int OpenResult;
    public ManualResetEventSlim Entered { get; } = new();
    public ManualResetEventSlim Release { get; } = new();

    private bool Gate(Operation operation)
    {
        if (!Armed || GateOn != operation)
        {
            return false;
        }
        Armed = false;
        Entered.Set();
        Release.Wait(TimeSpan.FromSeconds(10));
        return true;
    }

    public int Open(ReadOnlySpan<byte> path, int flags, out SafeFileHandle? fd)
    {
        if (Gate(Operation.Open) && OpenResult < 0)
        {
            fd = null;
            return OpenResult;
        }
        return inner.Open(path, flags, out fd);
    }

    public int Create(ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid, out SafeFileHandle? fd)
    {
        Gate(Operation.Create);
        return inner.Create(path, flags, mode, uid, gid, out fd);
    }

    public int Lstat(ReadOnlySpan<byte> path, out FileStat attributes)
    {
        Gate(Operation.Lstat);
        return inner.Lstat(path, out attributes);
    }
    public int Mkdir(ReadOnlySpan<byte> path, uint mode, uint uid, uint gid) => inner.Mkdir(path, mode, uid, gid);
    public int Mknod(ReadOnlySpan<byte> path, uint mode, ulong rdev, uint uid, uint gid) => inner.Mknod(path, mode, rdev, uid, gid);
    public int Symlink(ReadOnlySpan<byte> target, ReadOnlySpan<byte> linkPath, uint uid, uint gid) => inner.Symlink(target, linkPath, uid, gid);
    public int Link(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath) => inner.Link(oldPath, newPath);
    public int Readlink(ReadOnlySpan<byte> path, Span<byte> buffer) => inner.Readlink(path, buffer);
    public int Statfs(ReadOnlySpan<byte> path, out FileSystemStats stats) => inner.Statfs(path, out stats);
    public int Chmod(ReadOnlySpan<byte> path, uint mode) => inner.Chmod(path, mode);
    public int Chown(ReadOnlySpan<byte> path, uint uid, uint gid) => inner.Chown(path, uid, gid);
    public int Truncate(ReadOnlySpan<byte> path, long size) => inner.Truncate(path, size);
    public int Utime(ReadOnlySpan<byte> path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec) => inner.Utime(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec);
    public int Rename(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath) => inner.Rename(oldPath, newPath);
    public int Remove(ReadOnlySpan<byte> path) => inner.Remove(path);
    public int GetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, Span<byte> value) => inner.GetXattr(path, name, value);
    public int ListXattr(ReadOnlySpan<byte> path, Span<byte> list) => inner.ListXattr(path, list);
    public int SetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags) => inner.SetXattr(path, name, value, flags);
    public int RemoveXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name) => inner.RemoveXattr(path, name);
}

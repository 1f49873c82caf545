using Microsoft.Win32.SafeHandles;

namespace VirtFs.Virtio9p.FileSystem;

/// <summary>
/// The port through which the 9P server touches the export. Paths are raw bytes relative to the export root
/// ("/" is the root, "/a/b" below it), already normalised by the walker: no "..", no empty names.
/// Every method returns >= 0 on success or a negative Linux errno; an implementation that loses its
/// transport answers -EIO rather than throwing.
/// Data I/O does not go through here: Open/Create hand back an fd the server reads and writes itself.
/// </summary>
public interface IFileSystem
{
    int Open(ReadOnlySpan<byte> path, int flags, out SafeFileHandle? fd);
    int Create(ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid, out SafeFileHandle? fd);
    int Mkdir(ReadOnlySpan<byte> path, uint mode, uint uid, uint gid);
    int Mknod(ReadOnlySpan<byte> path, uint mode, ulong rdev, uint uid, uint gid);
    int Symlink(ReadOnlySpan<byte> target, ReadOnlySpan<byte> linkPath, uint uid, uint gid);
    int Link(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath);
    int Lstat(ReadOnlySpan<byte> path, out FileStat attributes);
    int Readlink(ReadOnlySpan<byte> path, Span<byte> buffer);
    int Statfs(ReadOnlySpan<byte> path, out FileSystemStats stats);
    int Chmod(ReadOnlySpan<byte> path, uint mode);
    int Chown(ReadOnlySpan<byte> path, uint uid, uint gid);
    int Truncate(ReadOnlySpan<byte> path, long size);
    int Utime(ReadOnlySpan<byte> path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec);
    int Rename(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath);
    int Remove(ReadOnlySpan<byte> path);
    int GetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, Span<byte> value);
    int ListXattr(ReadOnlySpan<byte> path, Span<byte> list);
    int SetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags);
    int RemoveXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name);

    /// <summary>Turns the host attributes of an object the server holds open (statx on its fd) into the guest's:
    /// a mapped security model replaces owner, mode and device number with the stored ones. 0 or -errno.</summary>
    int MapOpenStat(SafeFileHandle handle, ref FileStat attributes) => 0;

    /// <summary>True when a directory entry's host type is not the guest's (mapped security models): Treaddir
    /// then reports DT_UNKNOWN and the guest asks with Tgetattr.</summary>
    bool HidesHostFileTypes => false;
}

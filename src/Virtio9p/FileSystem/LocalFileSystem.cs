using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.Virtio9p.FileSystem.Local;
using static Tmds.Linux.LibC;

namespace VirtFs.Virtio9p.FileSystem;

/// <summary>
/// <see cref="IFileSystem"/> in this process, over a host directory: for a user exporting their own directory
/// without the root helper, and for tests. Same semantics as <see cref="ProxyFileSystem"/> over our helper.
/// <para>
/// Not chrooted, so it is escape-proof by construction rather than by the kernel's root: it keeps an
/// O_PATH|O_DIRECTORY fd of the export and reaches everything from it.
/// Every parent directory is resolved with openat2(root, rel, O_PATH|O_DIRECTORY, RESOLVE_IN_ROOT|
/// RESOLVE_NO_MAGICLINKS): "..", absolute symlinks and symlinked components all stay inside the export, as
/// they would under chroot (openat2(2), Linux >= 5.6). A parent path longer than PATH_MAX (a deep tree: the
/// guest's own PATH_MAX bounds only its relative paths) is resolved in chunks, each later chunk beneath the
/// directory fd the previous one reached (<see cref="ResolveLong"/>), up to the helper mode's cap. The last step is an *at call on that parent fd with the
/// last name (never "." or "..", see <see cref="LocalPath"/>), with AT_SYMLINK_NOFOLLOW / O_NOFOLLOW whenever
/// the operation means the name itself. Calls with no such form (chmod, truncate, xattrs, reopening with
/// access flags) first pin the object as O_PATH|O_NOFOLLOW and act through "/proc/self/fd/N"
/// (<see cref="ProcFdPath"/>), which reaches that object and nothing behind it.
/// </para>
/// <para>
/// Policies (differences from the helper are listed in tests/Virtio9p.Tests/FileSystem/FileSystemConformanceTests.cs):
/// Open/Create hand out only regular files and directories: anything else answers ENXIO, as our helper and
/// QEMU's close_if_special_file (CVE-2023-2861), and the object is pinned with O_PATH and checked before it is
/// opened, so a fifo or device is never opened at all (no driver open, no blocking). Open follows a final
/// symlink only when the caller did not pass O_NOFOLLOW, and then only inside the export (RESOLVE_IN_ROOT).
/// Chmod of a symlink answers EOPNOTSUPP (fchmodat(AT_SYMLINK_NOFOLLOW)); Truncate of a symlink EINVAL (the
/// kernel's answer for a non-regular file). Created objects get exactly the requested permission bits (the
/// helper runs with umask 0; we cannot change this process's umask, so we chmod after creating) and, when this
/// process is root, the requested owner; otherwise they stay the running user's, like an unprivileged virtiofsd.
/// </para>
/// Thread-safe: no mutable state beyond the root fd; every buffer is per call and bounded.
/// </summary>
public sealed unsafe class LocalFileSystem : IFileSystem, IDisposable
{

    /// <summary>XATTR_SIZE_MAX and XATTR_LIST_MAX (linux/limits.h): the kernel refuses larger buffers anyway.</summary>
    private const int MaxXattrSize = 65536;

    /// <summary>XATTR_NAME_MAX (linux/limits.h).</summary>
    private const int MaxXattrNameLength = 255;

    /// <summary>openat2 RESOLVE_IN_ROOT answers EAGAIN when a concurrent rename may have raced a ".." step;
    /// the man page says to retry. Bounded so a hostile renamer cannot spin us forever.</summary>
    private const int ResolveRetries = 16;

    private const uint StatxMask = 0x7ffu | 0x800u; // STATX_BASIC_STATS | STATX_BTIME

    private readonly SafeFileHandle _root;
    private readonly bool _isRoot;
    private readonly SecurityModel _model;

    /// <summary>QEMU's mapped-xattr: guest owners, modes and types live in user.virtfs.* (<see cref="MappedXattr"/>).</summary>
    private bool Mapped => _model == SecurityModel.MappedXattr;

    /// <summary>Opens <paramref name="rootDirectory"/> as the export. Throws if it is not a directory we can
    /// open, or if the kernel lacks openat2 (then nothing here could be made safe).</summary>
    public LocalFileSystem(string rootDirectory, SecurityModel model = SecurityModel.Passthrough)
    {
        _model = model;
        ArgumentException.ThrowIfNullOrEmpty(rootDirectory);
        byte[] path = new byte[System.Text.Encoding.UTF8.GetByteCount(rootDirectory) + 1];
        System.Text.Encoding.UTF8.GetBytes(rootDirectory, path);
        int fd;
        fixed (byte* p = path)
        {
            // SAFETY: p is pinned and NUL-terminated (the array is one longer than the text).
            fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
        }
        if (fd < 0)
        {
            throw new IOException($"cannot open export root '{rootDirectory}': errno {errno}");
        }
        _root = new SafeFileHandle(fd, ownsHandle: true);
        _isRoot = geteuid() == 0;

        int probe = Resolve("."u8, O_PATH | O_DIRECTORY | O_CLOEXEC, out SafeFileHandle? self);
        self?.Dispose();
        if (probe < 0)
        {
            _root.Dispose();
            throw new PlatformNotSupportedException($"openat2 with RESOLVE_IN_ROOT failed (errno {-probe}); Linux >= 5.6 is required");
        }
    }

    public void Dispose() => _root.Dispose();

    // ---- open / create ----

    public int Open(ReadOnlySpan<byte> path, int flags, out SafeFileHandle? fd)
    {
        fd = null;
        // Only Create creates; an O_TMPFILE would be an unnamed file made with no owner policy.
        if (FilePolicy.OpenRefuses(flags)) return -EINVAL;
        Span<byte> stack = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratch = new(stack, path.Length);
        int r = LocalPath.Parse(path, scratch.Span, out LocalPath p);
        return r < 0 ? r : OpenExisting(p, flags, out fd);
    }

    public int Create(ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid, out SafeFileHandle? fd)
    {
        fd = null;
        if (FilePolicy.CreateRefuses(flags)) return -EINVAL;
        Span<byte> stack = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratch = new(stack, path.Length);
        int r = LocalPath.Parse(path, scratch.Span, out LocalPath p);
        if (r < 0) return r;
        if (p.IsRoot) return -EISDIR; // open("/", O_CREAT) answers EISDIR
        r = OpenParent(p, out SafeFileHandle? dir);
        if (r < 0) return r;
        using (dir)
        {
            // Create exclusively and without following, so the new object is certainly a regular file we made;
            // if the name exists and the caller did not ask for O_EXCL, open what is there through the same
            // checks as Open. Bounded: the name may keep appearing and vanishing under a racing host process.
            for (int attempt = 0; attempt < 3; attempt++)
            {
                int created = OpenAt(dir!, p.Name,
                    (flags & ~O_NOFOLLOW) | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                    Mapped ? MappedXattr.FileMode : mode & 0xFFF, out SafeFileHandle? handle);
                if (created == 0)
                {
                    r = AdoptCreatedFile(handle!, mode, uid, gid);
                    if (r < 0)
                    {
                        handle!.Dispose();
                        UnlinkAt(dir!, p.Name, 0);
                        return r;
                    }
                    _ = FilePolicy.ClearNonblockUnlessAsked(handle!, flags);
                    fd = handle;
                    return 0;
                }
                if (created != -EEXIST || (flags & O_EXCL) != 0) return created;
                r = OpenExisting(p, flags & ~O_CREAT, out fd);
                if (r != -ENOENT) return r;
            }
            return -ENOENT;
        }
    }

    /// <summary>Pins the object (following a final symlink inside the export unless O_NOFOLLOW), refuses
    /// anything but a regular file or directory, then opens it for real through /proc/self/fd.</summary>
    private int OpenExisting(in LocalPath p, int flags, out SafeFileHandle? fd)
    {
        fd = null;
        int r = Resolve(p.Relative, O_PATH | O_CLOEXEC | (flags & (O_NOFOLLOW | O_DIRECTORY)), out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        {
            r = FileType(obj!, out uint type);
            if (r < 0) return r;
            r = FilePolicy.OpenableType(type); // ELOOP for a symlink, ENXIO for a special file (CVE-2023-2861)
            if (r < 0) return r;

            // O_NOFOLLOW must go: the last component of the /proc path is the magic link itself. O_NONBLOCK and
            // O_NOCTTY are belt and braces: the type cannot change under an O_PATH fd.
            int reopenFlags = FilePolicy.ReopenFlags(flags);
            Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
            using FdUse use = new(obj!);
            ReadOnlySpan<byte> procPath = ProcFdPath.Format(use.Fd, proc);
            int n;
            fixed (byte* pp = procPath)
            {
                // SAFETY: pinned, NUL-terminated.
                n = open(pp, reopenFlags, 0);
            }
            if (n < 0) return -errno;
            SafeFileHandle handle = new(n, ownsHandle: true);
            _ = FilePolicy.ClearNonblockUnlessAsked(handle, flags);
            fd = handle;
            return 0;
        }
    }

    /// <summary>A file we just created exclusively: give it the requested owner (as root) and exactly the
    /// requested permission bits (after the chown, which clears set-id bits).</summary>
    private int AdoptCreatedFile(SafeFileHandle handle, uint mode, uint uid, uint gid)
    {
        using FdUse use = new(handle);
        if (Mapped) return MappedXattr.Write(use.Fd, uid, gid, FileStat.TypeRegular | (mode & 0xFFF), ulong.MaxValue);
        // security model none: a new object that cannot get the guest's owner keeps ours (QEMU ignores the error).
        if (_isRoot && fchown(use.Fd, uid, gid) < 0 && _model != SecurityModel.None) return -errno;
        return fchmod(use.Fd, (mode_t)(ushort)(mode & 0xFFF)) < 0 ? -errno : 0;
    }

    // ---- create other objects ----

    public int Mkdir(ReadOnlySpan<byte> path, uint mode, uint uid, uint gid)
    {
        uint hostMode = Mapped ? MappedXattr.DirectoryMode : mode & 0xFFF;
        return CreateNode(path, (dir, name) => mkdirat(dir, name, (mode_t)(ushort)hostMode),
            FileStat.TypeDirectory | (mode & 0xFFF), ulong.MaxValue, uid, gid, AT_REMOVEDIR);
    }

    /// <summary>mapped-xattr: every node is a regular file of mode 0600 on the host, its type and device number in
    /// the xattrs (QEMU's local_mknod), so the host never holds a device node or fifo the guest made.</summary>
    public int Mknod(ReadOnlySpan<byte> path, uint mode, ulong rdev, uint uid, uint gid)
    {
        if (Mapped)
        {
            return CreateNode(path, (dir, name) => mknodat(dir, name, (mode_t)(ushort)(FileStat.TypeRegular | MappedXattr.FileMode), 0),
                mode & 0xFFFF, rdev, uid, gid, 0);
        }
        return CreateNode(path, (dir, name) => mknodat(dir, name, (mode_t)(ushort)(mode & 0xFFFF), rdev), mode, ulong.MaxValue, uid, gid, 0);
    }

    public int Symlink(ReadOnlySpan<byte> target, ReadOnlySpan<byte> linkPath, uint uid, uint gid)
    {
        // The target is stored, never resolved by us; it only has to be a valid C string of at most PATH_MAX.
        if (target.IsEmpty) return -ENOENT;
        if (target.Length > LocalPath.MaxPathLength) return -ENAMETOOLONG;
        if (target.IndexOf((byte)0) >= 0) return -EINVAL;
        Span<byte> targetZ = stackalloc byte[target.Length + 1];
        target.CopyTo(targetZ);
        targetZ[^1] = 0;
        Span<byte> stack = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratch = new(stack, linkPath.Length);
        int r = LocalPath.Parse(linkPath, scratch.Span, out LocalPath p);
        if (r < 0) return r;
        if (p.IsRoot) return -EEXIST;
        r = OpenParent(p, out SafeFileHandle? dir);
        if (r < 0) return r;
        if (Mapped)
        {
            using (dir)
            {
                return StoreSymlink(dir!, p.Name, target, uid, gid);
            }
        }
        using (dir)
        using (FdUse d = new(dir!))
        fixed (byte* t = targetZ)
        fixed (byte* n = p.Name)
        {
            // SAFETY: pinned, NUL-terminated buffers.
            if (symlinkat(t, d.Fd, n) < 0) return -errno;
            if (_isRoot && fchownat(d.Fd, n, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            {
                int e = errno;
                unlinkat(d.Fd, n, 0);
                return -e;
            }
            return 0;
        }
    }

    /// <summary>mapped-xattr's symlink (QEMU's local_symlink): a new regular file of mode 0600 holding the target,
    /// mode S_IFLNK|0777 in the xattrs. The host never gets a symlink the guest chose, so nothing on the host can
    /// be led astray by one.</summary>
    private static int StoreSymlink(SafeFileHandle dir, ReadOnlySpan<byte> nameZ, ReadOnlySpan<byte> target, uint uid, uint gid)
    {
        int r = OpenAt(dir, nameZ, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
            MappedXattr.FileMode, out SafeFileHandle? file);
        if (r < 0) return r;
        using (file)
        using (FdUse f = new(file!))
        {
            int done = 0;
            fixed (byte* t = target)
            {
                while (done < target.Length)
                {
                    // SAFETY: pinned; at most the remaining target bytes are read from t + done.
                    long n = write(f.Fd, t + done, (size_t)(target.Length - done));
                    if (n < 0 && errno == EINTR) continue;
                    if (n <= 0)
                    {
                        r = n < 0 ? -errno : -EIO;
                        break;
                    }
                    done += (int)n;
                }
            }
            if (r == 0) r = MappedXattr.Write(f.Fd, uid, gid, FileStat.TypeSymlink | 0x1FF /* 0777 */, ulong.MaxValue);
        }
        if (r < 0) UnlinkAt(dir, nameZ, 0);
        return r;
    }

    private delegate int NodeMaker(int dirFd, byte* name);

    /// <summary>mkdirat/mknodat on the parent, then owner and exact mode on the new object, pinned by an
    /// O_PATH|O_NOFOLLOW fd so a name swapped in meanwhile is never followed. A failed fix-up removes the object
    /// (it would otherwise be left with the wrong owner).</summary>
    private int CreateNode(ReadOnlySpan<byte> path, NodeMaker make, uint mode, ulong rdev, uint uid, uint gid, int removeFlags)
    {
        Span<byte> stack = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratch = new(stack, path.Length);
        int r = LocalPath.Parse(path, scratch.Span, out LocalPath p);
        if (r < 0) return r;
        if (p.IsRoot) return -EEXIST;
        r = OpenParent(p, out SafeFileHandle? dir);
        if (r < 0) return r;
        using (dir)
        {
            using (FdUse d = new(dir!))
            fixed (byte* n = p.Name)
            {
                // SAFETY: pinned, NUL-terminated.
                if (make(d.Fd, n) < 0) return -errno;
            }
            r = OpenAt(dir!, p.Name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, out SafeFileHandle? obj);
            if (r == 0)
            {
                using (obj)
                {
                    r = FixOwnerAndMode(obj!, mode, rdev, uid, gid);
                }
            }
            if (r < 0) UnlinkAt(dir!, p.Name, removeFlags);
            return r;
        }
    }

    /// <param name="mode">The guest's whole mode (type and permission bits).</param>
    /// <param name="rdev">Stored in mapped-xattr (ulong.MaxValue: none); the others pass it to mknodat.</param>
    private int FixOwnerAndMode(SafeFileHandle obj, uint mode, ulong rdev, uint uid, uint gid)
    {
        using FdUse use = new(obj);
        int r = FileType(obj, out uint type);
        if (r < 0) return r;
        if (type == FileStat.TypeSymlink) return -EEXIST; // not what we made: someone swapped the name
        if (Mapped) return MappedXattr.Write(use.Fd, uid, gid, mode, rdev);
        if (_isRoot)
        {
            fixed (byte* empty = "\0"u8)
            {
                // SAFETY: "" is a NUL-terminated literal; AT_EMPTY_PATH acts on the pinned object itself.
                if (fchownat(use.Fd, empty, uid, gid, AT_EMPTY_PATH) < 0 && _model != SecurityModel.None) return -errno;
            }
        }
        return ChmodThroughProc(use.Fd, mode);
    }

    // ---- names ----

    public int Link(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath)
    {
        Span<byte> stackOld = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratchOld = new(stackOld, oldPath.Length);
        Span<byte> stackNew = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratchNew = new(stackNew, newPath.Length);
        int r = LocalPath.Parse(oldPath, scratchOld.Span, out LocalPath from);
        if (r < 0) return r;
        r = LocalPath.Parse(newPath, scratchNew.Span, out LocalPath to);
        if (r < 0) return r;
        if (from.IsRoot) return -EPERM; // link(2) of a directory
        if (to.IsRoot) return -EEXIST;
        r = OpenParent(from, out SafeFileHandle? fromDir);
        if (r < 0) return r;
        using (fromDir)
        {
            r = OpenParent(to, out SafeFileHandle? toDir);
            if (r < 0) return r;
            using (toDir)
            using (FdUse a = new(fromDir!))
            using (FdUse b = new(toDir!))
            fixed (byte* na = from.Name)
            fixed (byte* nb = to.Name)
            {
                // SAFETY: pinned, NUL-terminated. Flags 0: a symlink as the old name is linked itself.
                return linkat(a.Fd, na, b.Fd, nb, 0) < 0 ? -errno : 0;
            }
        }
    }

    public int Rename(ReadOnlySpan<byte> oldPath, ReadOnlySpan<byte> newPath)
    {
        Span<byte> stackOld = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratchOld = new(stackOld, oldPath.Length);
        Span<byte> stackNew = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratchNew = new(stackNew, newPath.Length);
        int r = LocalPath.Parse(oldPath, scratchOld.Span, out LocalPath from);
        if (r < 0) return r;
        r = LocalPath.Parse(newPath, scratchNew.Span, out LocalPath to);
        if (r < 0) return r;
        if (from.IsRoot || to.IsRoot) return -EBUSY; // rename(2) of a mount point / the root
        r = OpenParent(from, out SafeFileHandle? fromDir);
        if (r < 0) return r;
        using (fromDir)
        {
            r = OpenParent(to, out SafeFileHandle? toDir);
            if (r < 0) return r;
            using (toDir)
            fixed (byte* na = from.Name)
            fixed (byte* nb = to.Name)
            {
                // SAFETY: pinned, NUL-terminated; the SafeFileHandles are ref-counted by the marshaller.
                return Sys.Renameat(fromDir!, na, toDir!, nb) < 0 ? -Marshal.GetLastPInvokeError() : 0;
            }
        }
    }

    public int Remove(ReadOnlySpan<byte> path)
    {
        Span<byte> stack = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratch = new(stack, path.Length);
        int r = LocalPath.Parse(path, scratch.Span, out LocalPath p);
        if (r < 0) return r;
        if (p.IsRoot) return -EBUSY;
        r = OpenParent(p, out SafeFileHandle? dir);
        if (r < 0) return r;
        using (dir)
        {
            // remove(3): unlink, and rmdir when unlink says it is a directory.
            r = UnlinkAt(dir!, p.Name, 0);
            return FilePolicy.RemoveAsDirectory(r) ? UnlinkAt(dir!, p.Name, AT_REMOVEDIR) : r;
        }
    }

    // ---- attributes ----

    public int Lstat(ReadOnlySpan<byte> path, out FileStat attributes)
    {
        attributes = default;
        if (Mapped)
        {
            // The stored attributes are read from the object pinned for the statx, never by name a second time.
            int pinned = PinObject(path, out SafeFileHandle? obj);
            if (pinned < 0) return pinned;
            using (obj)
            {
                return StatPinned(obj!, out attributes);
            }
        }
        Span<byte> stack = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratch = new(stack, path.Length);
        int r = LocalPath.Parse(path, scratch.Span, out LocalPath p);
        if (r < 0) return r;
        statx st;
        if (p.IsRoot)
        {
            using FdUse root = new(_root);
            fixed (byte* empty = "\0"u8)
            {
                // SAFETY: NUL-terminated literal, stack struct.
                if (statx(root.Fd, empty, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, StatxMask, &st) < 0) return -errno;
            }
        }
        else
        {
            r = OpenParent(p, out SafeFileHandle? dir);
            if (r < 0) return r;
            using (dir)
            using (FdUse d = new(dir!))
            fixed (byte* n = p.Name)
            {
                // SAFETY: pinned, NUL-terminated, stack struct.
                if (statx(d.Fd, n, AT_SYMLINK_NOFOLLOW, StatxMask, &st) < 0) return -errno;
            }
        }
        attributes = FileStat.FromStatx(st);
        return 0;
    }

    /// <summary>statx of a pinned object, with the mapped-xattr attributes applied.</summary>
    private int StatPinned(SafeFileHandle obj, out FileStat attributes)
    {
        attributes = default;
        using FdUse use = new(obj);
        statx st;
        fixed (byte* empty = "\0"u8)
        {
            // SAFETY: NUL-terminated literal, stack struct; AT_EMPTY_PATH stats the pinned object itself.
            if (statx(use.Fd, empty, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, StatxMask, &st) < 0) return -errno;
        }
        attributes = Mapped ? MappedXattr.Apply(use.Fd, FileStat.FromStatx(st)) : FileStat.FromStatx(st);
        return 0;
    }

    /// <summary>The attributes the guest sees of an object the server holds open: in mapped-xattr, the stored ones.</summary>
    public int MapOpenStat(SafeFileHandle handle, ref FileStat attributes)
    {
        if (!Mapped) return 0;
        using FdUse use = new(handle);
        attributes = MappedXattr.Apply(use.Fd, attributes);
        return 0;
    }

    /// <summary>mapped-xattr: a directory entry's host type says nothing of the guest's (a stored fifo is a regular
    /// file here), so entries go out as DT_UNKNOWN and the guest asks with Tgetattr (QEMU's local_readdir).</summary>
    public bool HidesHostFileTypes => Mapped;

    /// <summary>readlink(2) semantics: the target truncated to the buffer, its length returned; EINVAL for an
    /// empty buffer or a non-link. mapped-xattr: a regular file whose stored type is a symlink holds the target
    /// (read through a pinned fd, never following anything); a real host symlink answers its own target.</summary>
    public int Readlink(ReadOnlySpan<byte> path, Span<byte> buffer)
    {
        if (buffer.IsEmpty) return -EINVAL;
        if (Mapped) return ReadStoredLink(path, buffer);
        Span<byte> stack = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratch = new(stack, path.Length);
        int r = LocalPath.Parse(path, scratch.Span, out LocalPath p);
        if (r < 0) return r;
        if (p.IsRoot) return -EINVAL;
        r = OpenParent(p, out SafeFileHandle? dir);
        if (r < 0) return r;
        using (dir)
        using (FdUse d = new(dir!))
        fixed (byte* n = p.Name)
        fixed (byte* b = buffer)
        {
            // SAFETY: pinned; readlinkat writes at most buffer.Length bytes.
            long len = readlinkat(d.Fd, n, b, (size_t)buffer.Length);
            return len < 0 ? -errno : (int)len;
        }
    }

    private int ReadStoredLink(ReadOnlySpan<byte> path, Span<byte> buffer)
    {
        int r = PinObject(path, out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        using (FdUse use = new(obj!))
        {
            r = FileType(obj!, out uint type);
            if (r < 0) return r;
            if (type == FileStat.TypeSymlink)
            {
                fixed (byte* empty = "\0"u8)
                fixed (byte* b = buffer)
                {
                    // SAFETY: pinned; an empty name reads the O_PATH symlink itself (Linux >= 2.6.39).
                    long len = readlinkat(use.Fd, empty, b, (size_t)buffer.Length);
                    return len < 0 ? -errno : (int)len;
                }
            }
            if (type != FileStat.TypeRegular || (MappedXattr.ReadMode(use.Fd) & FileStat.TypeMask) != FileStat.TypeSymlink)
            {
                return -EINVAL;
            }
            Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
            int fd;
            fixed (byte* pp = ProcFdPath.Format(use.Fd, proc))
            {
                // SAFETY: pinned, NUL-terminated; the object was checked to be a regular file, so nothing special opens.
                fd = open(pp, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0);
            }
            if (fd < 0) return -errno;
            using SafeFileHandle file = new(fd, ownsHandle: true);
            fixed (byte* b = buffer)
            {
                // SAFETY: pinned; pread writes at most buffer.Length bytes.
                long n = pread(fd, b, (size_t)buffer.Length, 0);
                return n < 0 ? -errno : (int)n;
            }
        }
    }

    public int Statfs(ReadOnlySpan<byte> path, out FileSystemStats stats)
    {
        stats = default;
        int r = PinObject(path, out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        {
            StatFs s;
            // SAFETY: stack struct mirroring struct statfs (layout checked by a test).
            if (Sys.Fstatfs(obj!, &s) < 0) return -Marshal.GetLastPInvokeError();
            stats = new FileSystemStats((uint)s.f_type, (uint)s.f_bsize, s.f_blocks, s.f_bfree, s.f_bavail, s.f_files,
                s.f_ffree, (uint)s.f_fsid0 | ((ulong)(uint)s.f_fsid1 << 32), (uint)s.f_namelen);
            return 0;
        }
    }

    public int Chmod(ReadOnlySpan<byte> path, uint mode)
    {
        int r = PinObject(path, out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        {
            r = FileType(obj!, out uint type);
            if (r < 0) return r;
            // fchmodat(AT_SYMLINK_NOFOLLOW) answers EOPNOTSUPP for a symlink (Linux has no link modes).
            if (type == FileStat.TypeSymlink) return -EOPNOTSUPP;
            using FdUse use = new(obj!);
            if (Mapped)
            {
                // Only the permission bits change; the stored type (a stored fifo or symlink) stays what it is.
                long stored = MappedXattr.ReadMode(use.Fd);
                uint storedType = stored < 0 ? 0 : (uint)stored & FileStat.TypeMask;
                return MappedXattr.Write(use.Fd, MappedXattr.Keep, MappedXattr.Keep,
                    (storedType != 0 ? storedType : type) | (mode & 0xFFF), ulong.MaxValue);
            }
            return ChmodThroughProc(use.Fd, mode);
        }
    }

    /// <summary>lchown semantics (fchownat AT_EMPTY_PATH on the pinned object); uint.MaxValue keeps an id.</summary>
    public int Chown(ReadOnlySpan<byte> path, uint uid, uint gid)
    {
        int r = PinObject(path, out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        using (FdUse use = new(obj!))
        fixed (byte* empty = "\0"u8)
        {
            // mapped-xattr stores a real change; (-1, -1) only touches ctime, on the host object (QEMU's local_chown).
            if (Mapped && (uid != uint.MaxValue || gid != uint.MaxValue))
            {
                return MappedXattr.Write(use.Fd, uid, gid, MappedXattr.Keep, ulong.MaxValue);
            }
            // SAFETY: NUL-terminated literal.
            return fchownat(use.Fd, empty, uid, gid, AT_EMPTY_PATH) < 0 ? -errno : 0;
        }
    }

    /// <summary>truncate(2) of the object itself: a symlink is not followed and answers EINVAL, a directory
    /// EISDIR (vfs_truncate). Nothing is opened, so a special file is never opened either.</summary>
    public int Truncate(ReadOnlySpan<byte> path, long size)
    {
        if (size < 0) return -EINVAL;
        int r = PinObject(path, out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        using (FdUse use = new(obj!))
        {
            Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
            fixed (byte* pp = ProcFdPath.Format(use.Fd, proc))
            {
                // SAFETY: pinned, NUL-terminated.
                return truncate(pp, size) < 0 ? -errno : 0;
            }
        }
    }

    /// <summary>utimensat(AT_SYMLINK_NOFOLLOW); nsec may be UTIME_NOW or UTIME_OMIT.</summary>
    public int Utime(ReadOnlySpan<byte> path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec)
    {
        Span<byte> stack = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratch = new(stack, path.Length);
        int r = LocalPath.Parse(path, scratch.Span, out LocalPath p);
        if (r < 0) return r;
        timespec* ts = stackalloc timespec[2];
        ts[0].tv_sec = atimeSec;
        ts[0].tv_nsec = (long_t)atimeNsec;
        ts[1].tv_sec = mtimeSec;
        ts[1].tv_nsec = (long_t)mtimeNsec;
        if (p.IsRoot)
        {
            using FdUse root = new(_root);
            Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
            fixed (byte* pp = ProcFdPath.Format(root.Fd, proc))
            {
                // SAFETY: pinned, NUL-terminated; the root is a directory, following the magic link reaches it.
                return utimensat(AT_FDCWD, pp, ts, 0) < 0 ? -errno : 0;
            }
        }
        r = OpenParent(p, out SafeFileHandle? dir);
        if (r < 0) return r;
        using (dir)
        using (FdUse d = new(dir!))
        fixed (byte* n = p.Name)
        {
            // SAFETY: pinned, NUL-terminated, two timespecs on the stack.
            return utimensat(d.Fd, n, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
        }
    }

    // ---- extended attributes: l*xattr semantics through /proc/self/fd (see Sys.Getxattr) ----

    /// <summary>An empty <paramref name="value"/> asks for the size; otherwise ERANGE if it does not fit.</summary>
    public int GetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, Span<byte> value)
    {
        Span<byte> nameZ = stackalloc byte[MaxXattrNameLength + 1];
        int r = GuestXattrName(name, nameZ, XattrUse.Read);
        if (r < 0) return r;
        r = PinObject(path, out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        using (FdUse use = new(obj!))
        {
            Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
            int size = Math.Min(value.Length, MaxXattrSize);
            fixed (byte* pp = ProcFdPath.Format(use.Fd, proc))
            fixed (byte* n = nameZ)
            fixed (byte* v = value)
            {
                // SAFETY: pinned; the kernel writes at most size bytes, size <= value.Length.
                nint len = Sys.Getxattr(pp, n, size == 0 ? null : v, (nuint)size);
                return len < 0 ? -Marshal.GetLastPInvokeError() : (int)len;
            }
        }
    }

    /// <summary>An empty <paramref name="list"/> asks for the size.</summary>
    public int ListXattr(ReadOnlySpan<byte> path, Span<byte> list)
    {
        int r = PinObject(path, out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        using (FdUse use = new(obj!))
        {
            Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
            if (_model != SecurityModel.Passthrough)
            {
                // The whole host list first (XATTR_LIST_MAX at most), then the guest's view of it.
                byte[] host = System.Buffers.ArrayPool<byte>.Shared.Rent(MaxXattrSize);
                try
                {
                    nint all;
                    fixed (byte* pp = ProcFdPath.Format(use.Fd, proc))
                    fixed (byte* h = host)
                    {
                        // SAFETY: pinned; the kernel writes at most MaxXattrSize bytes (the rented array is at least that).
                        all = Sys.Listxattr(pp, h, (nuint)MaxXattrSize);
                    }
                    if (all < 0) return -Marshal.GetLastPInvokeError();
                    return FilterXattrList(host.AsSpan(0, (int)all), list[..Math.Min(list.Length, MaxXattrSize)]);
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(host);
                }
            }
            int size = Math.Min(list.Length, MaxXattrSize);
            fixed (byte* pp = ProcFdPath.Format(use.Fd, proc))
            fixed (byte* l = list)
            {
                // SAFETY: pinned; the kernel writes at most size bytes.
                nint len = Sys.Listxattr(pp, size == 0 ? null : l, (nuint)size);
                return len < 0 ? -Marshal.GetLastPInvokeError() : (int)len;
            }
        }
    }

    public int SetXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags)
    {
        if (value.Length > MaxXattrSize) return -E2BIG;
        Span<byte> nameZ = stackalloc byte[MaxXattrNameLength + 1];
        int r = GuestXattrName(name, nameZ, XattrUse.Write);
        if (r < 0) return r;
        r = PinObject(path, out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        using (FdUse use = new(obj!))
        {
            Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
            fixed (byte* pp = ProcFdPath.Format(use.Fd, proc))
            fixed (byte* n = nameZ)
            fixed (byte* v = value)
            {
                // SAFETY: pinned; the kernel reads value.Length bytes.
                return Sys.Setxattr(pp, n, v, (nuint)value.Length, flags) < 0 ? -Marshal.GetLastPInvokeError() : 0;
            }
        }
    }

    public int RemoveXattr(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name)
    {
        Span<byte> nameZ = stackalloc byte[MaxXattrNameLength + 1];
        int r = GuestXattrName(name, nameZ, XattrUse.Remove);
        if (r < 0) return r;
        bool mappedAcl = r == 1;
        r = PinObject(path, out SafeFileHandle? obj);
        if (r < 0) return r;
        using (obj)
        using (FdUse use = new(obj!))
        {
            Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
            fixed (byte* pp = ProcFdPath.Format(use.Fd, proc))
            fixed (byte* n = nameZ)
            {
                // SAFETY: pinned, NUL-terminated.
                if (Sys.Removexattr(pp, n) == 0) return 0;
                int e = Marshal.GetLastPInvokeError();
                // Removing an ACL that is not there is not an error (QEMU's mp_pacl_removexattr).
                return e == ENODATA && mappedAcl ? 0 : -e;
            }
        }
    }

    private enum XattrUse { Read, Write, Remove }

    /// <summary>The host name for a guest's xattr name, as QEMU's xattr tables for the security model: passthrough
    /// passes every name; mapped-xattr and none pass user.*, mapped-xattr keeps POSIX ACLs as
    /// user.virtfs.system.posix_acl_* and hides user.virtfs.* (ENODATA to read, EACCES to change), none refuses
    /// ACLs; any other namespace (trusted, security, system) answers EOPNOTSUPP. Returns 1 for a mapped ACL name,
    /// 0 for another accepted name, or -errno.</summary>
    private int GuestXattrName(ReadOnlySpan<byte> name, Span<byte> nameZ, XattrUse use)
    {
        int r = XattrName(name, nameZ);
        if (r < 0 || _model == SecurityModel.Passthrough) return r;
        bool acl = name.SequenceEqual("system.posix_acl_access"u8) || name.SequenceEqual("system.posix_acl_default"u8);
        if (acl && Mapped)
        {
            ReadOnlySpan<byte> prefix = MappedXattr.ReservedPrefix;
            if (prefix.Length + name.Length > MaxXattrNameLength) return -ERANGE;
            prefix.CopyTo(nameZ);
            name.CopyTo(nameZ[prefix.Length..]);
            nameZ[prefix.Length + name.Length] = 0;
            return 1;
        }
        if (!name.StartsWith("user."u8)) return -EOPNOTSUPP;
        if (Mapped && MappedXattr.IsReserved(name)) return use == XattrUse.Read ? -ENODATA : -EACCES;
        return 0;
    }

    /// <summary>The guest's view of a host xattr name list (see <see cref="GuestXattrName"/>): names it cannot
    /// reach are left out, mapped ACLs appear under their system.* names. Returns the filtered length, or
    /// ERANGE when <paramref name="list"/> is not empty and too small.</summary>
    private int FilterXattrList(ReadOnlySpan<byte> host, Span<byte> list)
    {
        int length = 0;
        while (!host.IsEmpty)
        {
            int end = host.IndexOf((byte)0);
            ReadOnlySpan<byte> name = end < 0 ? host : host[..end];
            host = end < 0 ? default : host[(end + 1)..];
            if (!name.StartsWith("user."u8)) continue;
            if (Mapped && MappedXattr.IsReserved(name))
            {
                ReadOnlySpan<byte> inner = name[MappedXattr.ReservedPrefix.Length..];
                if (!inner.SequenceEqual("system.posix_acl_access"u8) && !inner.SequenceEqual("system.posix_acl_default"u8)) continue;
                name = inner;
            }
            if (!list.IsEmpty)
            {
                if (length + name.Length + 1 > list.Length) return -ERANGE;
                name.CopyTo(list[length..]);
                list[length + name.Length] = 0;
            }
            length += name.Length + 1;
        }
        return length;
    }

    /// <summary>ERANGE for an empty name or one above XATTR_NAME_MAX (the kernel's answer), EINVAL for a NUL.</summary>
    private static int XattrName(ReadOnlySpan<byte> name, Span<byte> nameZ)
    {
        if (name.IsEmpty || name.Length > MaxXattrNameLength) return -ERANGE;
        if (name.IndexOf((byte)0) >= 0) return -EINVAL;
        name.CopyTo(nameZ);
        nameZ[name.Length] = 0;
        return 0;
    }

    // ---- resolution ----

    /// <summary>openat2 from the export root with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS: "..", absolute
    /// symlinks and /proc magic links can neither leave the export nor jump anywhere else. A path longer than
    /// PATH_MAX goes to <see cref="ResolveLong"/>; the common case is this one call.</summary>
    private int Resolve(ReadOnlySpan<byte> relativeZ, int flags, out SafeFileHandle? fd)
    {
        if (relativeZ.Length - 1 > LocalPath.MaxPathLength) return ResolveLong(relativeZ[..^1], flags, out fd);
        using FdUse root = new(_root);
        fixed (byte* rel = relativeZ)
        {
            // SAFETY: rel pinned and NUL-terminated.
            return OpenAt2(root.Fd, rel, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, out fd);
        }
    }

    /// <summary>
    /// A path the kernel would refuse whole (over PATH_MAX), entered in chunks, each cut at a '/' and at most
    /// PATH_MAX long: the first from the export root as <see cref="Resolve"/> does (RESOLVE_IN_ROOT), each later
    /// one from the O_PATH fd of the directory the previous chunk reached, with RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS.
    /// What each step stops:
    /// <list type="bullet">
    /// <item>A directory swapped for a symlink (or renamed) between two chunks: the previous chunk's fd pins the
    /// directory that was really there, inside the export; the next chunk starts from it, never from a name
    /// looked up again.</item>
    /// <item>A symlink met in a later chunk (placed by the host, or swapped in during the call): RESOLVE_BENEATH
    /// follows it only while it stays below that chunk's start directory; an absolute one or one climbing above
    /// fails (EXDEV, answered as ELOOP: what QEMU's server, which opens every component O_NOFOLLOW, answers for
    /// any symlink inside a path). RESOLVE_IN_ROOT would be wrong here: it would clamp at the chunk's directory,
    /// not at the export, and so resolve ".." and "/" to places the whole path does not name.</item>
    /// <item>".." at the start of a chunk, which RESOLVE_BENEATH would refuse although the whole path is legal:
    /// long paths hold no ".." at all (<see cref="LocalPath"/> refuses them; the server never builds one).</item>
    /// <item>/proc magic links anywhere: RESOLVE_NO_MAGICLINKS on every chunk.</item>
    /// </list>
    /// Every intermediate fd is a SafeHandle, closed as soon as the next chunk is open and on every error.
    /// Bounded: at most <see cref="LocalPath.MaxLongPathLength"/> bytes, so at most 5 chunks (each cut keeps at
    /// least PATH_MAX - NAME_MAX bytes, the names having been checked against NAME_MAX).
    /// </summary>
    private int ResolveLong(ReadOnlySpan<byte> relative, int flags, out SafeFileHandle? fd)
    {
        fd = null;
        Span<byte> chunk = stackalloc byte[LocalPath.MaxPathLength + 1];
        SafeFileHandle? dir = null; // null: the export root (first chunk)
        try
        {
            int start = 0;
            while (relative.Length - start > LocalPath.MaxPathLength)
            {
                // The last '/' within PATH_MAX bytes of start: the chunk before it fits, and ends at a name boundary.
                int cut = relative.Slice(start, LocalPath.MaxPathLength + 1).LastIndexOf((byte)'/');
                if (cut <= 0) return -ENAMETOOLONG; // a name longer than PATH_MAX: LocalPath refuses it first
                int r = OpenChunk(dir, relative.Slice(start, cut), chunk, O_PATH | O_DIRECTORY | O_CLOEXEC, out SafeFileHandle? next);
                if (r < 0) return r;
                dir?.Dispose();
                dir = next;
                start += cut + 1;
                while (start < relative.Length && relative[start] == (byte)'/') start++; // "a//b": no empty chunk
            }
            return OpenChunk(dir, relative[start..], chunk, flags, out fd);
        }
        finally
        {
            dir?.Dispose();
        }
    }

    /// <summary>One chunk of <see cref="ResolveLong"/>: from the root with RESOLVE_IN_ROOT when
    /// <paramref name="dir"/> is null, else beneath <paramref name="dir"/>.</summary>
    private int OpenChunk(SafeFileHandle? dir, ReadOnlySpan<byte> chunk, Span<byte> buffer, int flags, out SafeFileHandle? fd)
    {
        chunk.CopyTo(buffer);
        buffer[chunk.Length] = 0;
        using FdUse from = new(dir ?? _root);
        fixed (byte* path = buffer)
        {
            // SAFETY: path pinned and NUL-terminated (chunk is at most PATH_MAX - 1 + 1 bytes, buffer one more).
            if (dir is null) return OpenAt2(from.Fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, out fd);
            int r = OpenAt2(from.Fd, path, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, out fd);
            return r == -EXDEV ? -ELOOP : r;
        }
    }

    /// <summary>openat2, retried on EAGAIN (a concurrent rename may have raced a ".." step; the man page says to
    /// retry) and EINTR, a bounded number of times.</summary>
    private static int OpenAt2(int dirFd, byte* pathZ, int flags, ulong resolve, out SafeFileHandle? fd)
    {
        fd = null;
        open_how how = default;
        how.flags = (ulong)(uint)flags;
        how.resolve = resolve;
        for (int attempt = 0; ; attempt++)
        {
            // SAFETY: the caller pins pathZ NUL-terminated; how on the stack with its exact size.
            int n = openat2(dirFd, pathZ, &how, (size_t)sizeof(open_how));
            if (n >= 0)
            {
                fd = new SafeFileHandle(n, ownsHandle: true);
                return 0;
            }
            int e = errno;
            if ((e == EAGAIN || e == EINTR) && attempt < ResolveRetries) continue;
            return -e;
        }
    }

    private int OpenParent(in LocalPath p, out SafeFileHandle? dir) =>
        Resolve(p.Parent, O_PATH | O_DIRECTORY | O_CLOEXEC, out dir);

    /// <summary>The object a path names, itself (a final symlink is not followed), as an O_PATH fd.</summary>
    private int PinObject(ReadOnlySpan<byte> path, out SafeFileHandle? obj)
    {
        obj = null;
        Span<byte> stack = stackalloc byte[LocalPath.ScratchSize];
        using LocalPath.Scratch scratch = new(stack, path.Length);
        int r = LocalPath.Parse(path, scratch.Span, out LocalPath p);
        if (r < 0) return r;
        if (p.IsRoot) return Resolve(p.Relative, O_PATH | O_DIRECTORY | O_CLOEXEC, out obj);
        r = OpenParent(p, out SafeFileHandle? dir);
        if (r < 0) return r;
        using (dir)
        {
            return OpenAt(dir!, p.Name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, out obj);
        }
    }

    private static int OpenAt(SafeFileHandle dir, ReadOnlySpan<byte> nameZ, int flags, uint mode, out SafeFileHandle? fd)
    {
        fd = null;
        using FdUse d = new(dir);
        fixed (byte* n = nameZ)
        {
            // SAFETY: pinned, NUL-terminated.
            int result = openat(d.Fd, n, flags, (mode_t)(ushort)(mode & 0xFFFF));
            if (result < 0) return -errno;
            fd = new SafeFileHandle(result, ownsHandle: true);
            return 0;
        }
    }

    private static int UnlinkAt(SafeFileHandle dir, ReadOnlySpan<byte> nameZ, int flags)
    {
        using FdUse d = new(dir);
        fixed (byte* n = nameZ)
        {
            // SAFETY: pinned, NUL-terminated.
            return unlinkat(d.Fd, n, flags) < 0 ? -errno : 0;
        }
    }

    private static int FileType(SafeFileHandle obj, out uint type)
    {
        type = 0;
        using FdUse use = new(obj);
        stat st;
        // SAFETY: stack struct; fstat works on O_PATH fds (Linux >= 3.6).
        if (fstat(use.Fd, &st) < 0) return -errno;
        type = (ushort)st.st_mode & FileStat.TypeMask;
        return 0;
    }

    /// <summary>chmod of an O_PATH-pinned non-symlink (fchmod refuses O_PATH fds with EBADF).</summary>
    private static int ChmodThroughProc(int fd, uint mode)
    {
        Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
        fixed (byte* pp = ProcFdPath.Format(fd, proc))
        {
            // SAFETY: pinned, NUL-terminated.
            return chmod(pp, (mode_t)(ushort)(mode & 0xFFF)) < 0 ? -errno : 0;
        }
    }
}

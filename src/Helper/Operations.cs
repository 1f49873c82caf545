using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.Helper.Interop;
using VirtFs.ProxyFs;
using VirtFs.ProxyFs.Protocol;
using static Tmds.Linux.LibC;

namespace VirtFs.Helper;

/// <summary>
/// One function per proxy request, each the counterpart of a branch in QEMU 7.2's virtfs-proxy-helper.c
/// process_requests. The process has pivot_root'ed into the export (its root) with cwd "/", so absolute and relative paths name the same thing
/// and ".." stops at the export root. Every result is 0/positive or -errno; replies are built by the caller.
/// Policies (docs/proxy-protocol.md): lstat/lchown/utimensat/link/rename/remove/xattrs never follow a final
/// symlink; chmod and truncate follow it as QEMU's helper does (the target is inside the export root); open/create
/// never open, let alone hand out, anything but a regular file or directory (CVE-2023-2861). The root is the
/// export, bound onto itself in a private mount namespace and flagged nosuid,nodev,noexec on every mount below it
/// (<see cref="Sandbox"/>), and every fd handed out inherits that.
/// </summary>
internal sealed unsafe class Operations
{
    private const uint FS_IOC_GETVERSION = 0x80087601; // _IOR('v', 1, long)

    /// <summary>The open flags a client may pass (asm-generic/fcntl.h); others are dropped. O_PATH is refused
    /// outright: with it the kernel ignores O_CREAT|O_EXCL and opens whatever is there (a fifo, a device node).
    /// </summary>
    private static readonly int ClientOpenFlags = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK |
        O_DSYNC | O_DIRECT | O_LARGEFILE | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_SYNC;

    private readonly CPath _path1 = new(), _path2 = new(), _name = new();
    private readonly byte[] _data = new byte[ProxyLimits.MaxBodySize];
    private readonly bool _getVersionSupported;
    private readonly XattrPolicy _xattrs;

    public Operations(bool getVersionSupported, XattrPolicy xattrs)
    {
        _getVersionSupported = getVersionSupported;
        _xattrs = xattrs;
    }

    /// <summary>The name in a CPath buffer, without its NUL.</summary>
    private static ReadOnlySpan<byte> NameOf(byte[] cstring) => cstring.AsSpan(0, Array.IndexOf(cstring, (byte)0));

    /// <summary>Bytes of the last "s" payload (readlink target, xattr value or list) in <see cref="Data"/>.</summary>
    public ReadOnlySpan<byte> Data(int length) => _data.AsSpan(0, length);

    // ---- open / create: answered with an fd ----

    /// <summary>T_OPEN. O_CREAT/O_TMPFILE would create files as root: only T_CREATE creates (QEMU's 9p server strips
    /// O_CREAT before T_OPEN, get_dotl_openflags).</summary>
    public int Open(in OpenRequest req, out SafeFileHandle? fd)
    {
        fd = null;
        if (FilePolicy.OpenRefuses(req.Flags) || (req.Flags & O_PATH) != 0) return -Errno.EINVAL;
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        return r < 0 ? r : OpenRegular(path, offset, req.Flags & ClientOpenFlags, out fd);
    }

    /// <summary>T_CREATE, as the requester's uid/gid so the new file is theirs. The create itself runs with
    /// O_EXCL, so it can only make a new regular file; when the name exists and the client did not ask for
    /// O_EXCL, the existing file is opened through the same checks as T_OPEN (a fifo or device node there is
    /// never opened).</summary>
    public int Create(in CreateRequest req, out SafeFileHandle? fd)
    {
        fd = null;
        if (FilePolicy.CreateRefuses(req.Flags) || (req.Flags & O_PATH) != 0) return -Errno.EINVAL;
        if (ExportReach.Exposed && ExportReach.PrivilegedMode(req.Mode)) return -Errno.EPERM;
        int flags = req.Flags & ClientOpenFlags;
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        r = Identity.Become(req.Uid, req.Gid, out var identity);
        if (r < 0) return r;
        using (identity)
        {
            // A name that vanishes between the two tries (a racing unlink) is tried again, a few times.
            for (int attempt = 0; ; attempt++)
            {
                r = CreateNew(path, offset, flags, req.Mode, out fd);
                if (r != -EEXIST || (flags & O_EXCL) != 0) return r;
                r = OpenRegular(path, offset, flags & ~O_CREAT, out fd);
                if (r != -ENOENT || attempt == 2) return r;
            }
        }
    }

    /// <summary>open(O_CREAT|O_EXCL): makes a new regular file or fails; never opens what is already there
    /// (O_EXCL does not follow a final symlink either).</summary>
    private static int CreateNew(byte[] path, int offset, int flags, uint mode, out SafeFileHandle? fd)
    {
        fd = null;
        fixed (byte* p = &path[offset])
        {
            // SAFETY: p is NUL-terminated (CPath) and pinned.
            int n = open(p, flags | O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC, (mode_t)(ushort)(mode & 0xFFFF));
            if (n < 0) return -errno;
            fd = new SafeFileHandle((IntPtr)n, ownsHandle: true);
            return 0;
        }
    }

    /// <summary>
    /// Opens only regular files and directories (CVE-2023-2861: a guest-made device node or fifo must never be
    /// opened for it), without a window between check and use: O_PATH opens the name without running any
    /// driver or fifo code, fstat on that fd says what the inode is, and only a regular file or directory is
    /// then reopened with the real flags through /proc/self/fd (<see cref="ProcSelfFd"/>), which reaches that
    /// same inode whatever is renamed meanwhile (a fifo swapped in with RENAME_EXCHANGE after a path-based
    /// stat used to be opened by root). Special files answer ENXIO, as QEMU's close_if_special_file.
    /// </summary>
    private static int OpenRegular(byte[] path, int offset, int flags, out SafeFileHandle? fd)
    {
        fd = null;
        int r = OpenPath(path, offset, flags & (O_NOFOLLOW | O_DIRECTORY), out var pathFd, out uint mode);
        if (r < 0) return r;
        using (pathFd)
        {
            r = FilePolicy.OpenableType(mode); // ELOOP for a final symlink (O_NOFOLLOW), ENXIO for a special file
            if (r < 0) return r;
            // Exposed export (ExportReach): a setuid/setgid file handed out writable could be rewritten through a
            // shared mapping (which never clears the bits) and run from the host path. Drop the bits first, as the
            // kernel does when an unprivileged writer writes.
            if (ExportReach.Exposed && (mode & 0xF000u) == 0x8000u && ExportReach.PrivilegedMode(mode) &&
                ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0))
            {
                int c = ProcSelfFd.Chmod(pathFd!, mode & 0x3FF);
                if (c < 0) return c;
            }
            // Always non-blocking first (a client's lease would park this thread 45 s), then as asked.
            int n = ProcSelfFd.Reopen(pathFd!, FilePolicy.ReopenFlags(flags));
            if (n < 0) return n;
            fd = new SafeFileHandle((IntPtr)n, ownsHandle: true);
            int c2 = FilePolicy.ClearNonblockUnlessAsked(fd, flags);
            if (c2 < 0)
            {
                fd.Dispose();
                fd = null;
                return c2;
            }
            return 0;
        }
    }

    // ---- create others: status ----

    /// <summary>T_MKNOD / T_MKDIR / T_SYMLINK as the requester (do_create_others).</summary>
    public int CreateOther(ProxyRequestType type, in CreateOtherRequest req)
    {
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        byte[]? target = null;
        if (type == ProxyRequestType.Symlink)
        {
            r = _path2.Set(req.Target, out target);
            if (r < 0) return r;
        }
        // Exposed export (ExportReach): no device node the host path would let the uid open, and no setuid or
        // setgid file (mknod makes regular files too, and a mapped write keeps the bits). Checked before the
        // identity switch, so a refusal returns as root.
        if (type == ProxyRequestType.Mknod && ExportReach.Exposed &&
            (ExportReach.IsDevice(req.Mode) || ExportReach.PrivilegedMode(req.Mode)))
            return -Errno.EPERM;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        r = Identity.Become(req.Uid, req.Gid, out var identity);
        if (r < 0) return r;
        using (identity)
        {
            fixed (byte* p = &path[offset])
            fixed (byte* t = target)
            {
                // SAFETY: NUL-terminated, pinned buffers.
                int rc = type switch
                {
                    ProxyRequestType.Mknod => mknod(p, (mode_t)(ushort)(req.Mode & 0xFFFF), req.Rdev),
                    ProxyRequestType.Mkdir => mkdir(p, (mode_t)(ushort)(req.Mode & 0xFFFF)),
                    _ => symlink(t, p),
                };
                return rc < 0 ? -errno : 0;
            }
        }
    }

    // ---- path operations ----

    /// <summary>T_LINK: link(2) does not follow a symlink given as the old path.</summary>
    public int Link(in PathRequest req) => TwoPaths(req, static (da, a, db, b) =>
    {
        using var ua = new FdUse(da);
        using var ub = new FdUse(db);
        // SAFETY: a and b are NUL-terminated and pinned by TwoPaths; the FdUse references keep both dir fds open.
        return linkat(ua.Fd, a, ub.Fd, b, 0);
    });

    /// <summary>T_RENAME: rename(2) acts on the names themselves.</summary>
    public int Rename(in PathRequest req) => TwoPaths(req, static (da, a, db, b) => Sys.Renameat(da, a, db, b));

    public int Lstat(in PathRequest req, out ProxyStat result)
    {
        result = default;
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        stat st;
        fixed (byte* p = &path[offset])
        {
            // SAFETY: the strings are NUL-terminated (CPath) and the buffers pinned for the calls below.
            if (lstat(p, &st) < 0) return -errno;
        }
        result = new ProxyStat((ulong)st.st_dev, (ulong)st.st_ino, (ulong)st.st_nlink, (ushort)st.st_mode,
            (uint)st.st_uid, (uint)st.st_gid, (ulong)st.st_rdev, (ulong)(long)st.st_size, (ulong)(long)st.st_blksize,
            (ulong)(long)st.st_blocks, (ulong)(long)st.st_atim.tv_sec, (ulong)(long)st.st_atim.tv_nsec,
            (ulong)(long)st.st_mtim.tv_sec, (ulong)(long)st.st_mtim.tv_nsec,
            (ulong)(long)st.st_ctim.tv_sec, (ulong)(long)st.st_ctim.tv_nsec);
        return 0;
    }

    /// <summary>T_STATFS. f_fsid's two ints are widened with sign extension, as the C assignment in
    /// statfs_to_prstatfs does.</summary>
    public int Statfs(in PathRequest req, out ProxyStatFs result)
    {
        result = default;
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        StatFs b;
        fixed (byte* p = &path[offset])
        {
            // SAFETY: the strings are NUL-terminated (CPath) and the buffers pinned for the calls below.
            if (Sys.Statfs(p, &b) < 0) return -System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        }
        result = new ProxyStatFs((ulong)b.f_type, (ulong)b.f_bsize, b.f_blocks, b.f_bfree, b.f_bavail, b.f_files,
            b.f_ffree, (ulong)(long)b.f_fsid0, (ulong)(long)b.f_fsid1, (ulong)b.f_namelen, (ulong)b.f_frsize);
        return 0;
    }

    /// <summary>T_READLINK: at most size-1 bytes, like do_readlink; the buffer is ours (bounded by the wire
    /// limit), never an allocation of the peer's size.</summary>
    public int Readlink(in PathRequest req)
    {
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        if (req.BufferSize <= 1) return -Errno.EINVAL;
        int max = Math.Min(req.BufferSize - 1, ProxyLimits.MaxReplyStringLength);
        fixed (byte* p = &path[offset])
        fixed (byte* d = _data)
        {
            // SAFETY: the strings are NUL-terminated (CPath) and the buffers pinned for the calls below.
            long n = readlink(p, d, (size_t)max);
            return n < 0 ? -errno : (int)n;
        }
    }

    /// <summary>T_CHMOD: chmod(2) follows a final symlink, as QEMU's helper; Linux cannot chmod a link itself.</summary>
    public int Chmod(in PathRequest req)
    {
        if (!ExportReach.Exposed) // SAFETY (the lambda): p is NUL-terminated and pinned by OnePath.
            return OnePath(req, static (byte* p, in PathRequest q) => chmod(p, (mode_t)(ushort)(q.Mode & 0xFFFF)));
        // Exposed export (ExportReach): checked and changed on one inode (O_PATH, fstat, then chmod through
        // /proc/self/fd) so a file swapped in meanwhile is not the one changed. A privileged mode only on a
        // directory; nothing on a device node (a 0666 node would open from the host path).
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        r = OpenPath(path, offset, 0, out var pathFd, out uint mode);
        if (r < 0) return r;
        using (pathFd)
        {
            if (ExportReach.IsDevice(mode)) return -Errno.EPERM;
            if ((mode & 0xF000u) != 0x4000u && ExportReach.PrivilegedMode((uint)req.Mode)) return -Errno.EPERM;
            return ProcSelfFd.Chmod(pathFd!, (uint)req.Mode & 0xFFFF);
        }
    }

    /// <summary>open(O_PATH | extra) and fstat: the inode a path names, pinned, and its mode. 0 or -errno.</summary>
    private static int OpenPath(byte[] path, int offset, int extraFlags, out SafeFileHandle? pathFd, out uint mode)
    {
        pathFd = null;
        mode = 0;
        stat st;
        fixed (byte* p = &path[offset])
        {
            // SAFETY: p is NUL-terminated (CPath) and pinned; st is a local.
            int n = open(p, O_PATH | O_CLOEXEC | extraFlags);
            if (n < 0) return -errno;
            pathFd = new SafeFileHandle((IntPtr)n, ownsHandle: true);
            if (fstat(n, &st) < 0)
            {
                int err = errno;
                pathFd.Dispose();
                pathFd = null;
                return -err;
            }
            mode = (ushort)st.st_mode;
            return 0;
        }
    }

    /// <summary>T_CHOWN: lchown, the link itself; -1 keeps an id.</summary>
    public int Chown(in PathRequest req)
    {
        if (!ExportReach.Exposed) // SAFETY (the lambda): p is NUL-terminated and pinned by OnePath.
            return OnePath(req, static (byte* p, in PathRequest q) => lchown(p, unchecked((uint)q.Uid), unchecked((uint)q.Gid)));
        // Exposed export (ExportReach): a device node chowned to the uid would open from the host path.
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        r = OpenPath(path, offset, O_NOFOLLOW, out var pathFd, out uint mode);
        if (r < 0) return r;
        using (pathFd)
        {
            if (ExportReach.IsDevice(mode)) return -Errno.EPERM;
            using var file = new FdUse(pathFd!);
            fixed (byte* empty = "\0"u8)
            {
                // SAFETY: empty string literal, pinned; file keeps the fd open. AT_EMPTY_PATH acts on the inode
                // itself (a symlink included, as lchown).
                return fchownat(file.Fd, empty, unchecked((uint)req.Uid), unchecked((uint)req.Gid),
                    AT_EMPTY_PATH) < 0 ? -errno : 0;
            }
        }
    }

    /// <summary>T_TRUNCATE: follows a final symlink, as QEMU's helper's truncate(2). Done as open + ftruncate
    /// through <see cref="OpenRegular"/>: truncate(2) by path waits out a client's lease on the file (45 s a
    /// request, enough to tie up every connection); the non-blocking open answers EWOULDBLOCK instead.</summary>
    public int Truncate(in PathRequest req)
    {
        if (req.Length < 0) return -Errno.EINVAL;
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        r = OpenRegular(path, offset, O_WRONLY, out var fd);
        if (r == -Errno.ENXIO) return -Errno.EINVAL; // truncate(2) on a fifo or device
        if (r < 0) return r;
        using (fd)
        {
            using var file = new FdUse(fd!);
            return ftruncate(file.Fd, req.Length) < 0 ? -errno : 0;
        }
    }

    /// <summary>T_UTIME: utimensat(AT_SYMLINK_NOFOLLOW). The wire's second field is what the client calls atime
    /// nsec; QEMU 7.2's driver fills it with the mtime nsec (docs/proxy-protocol.md), we apply what arrives.</summary>
    public int Utime(in PathRequest req) => OnePath(req, static (byte* p, in PathRequest q) =>
    {
        // SAFETY: p is NUL-terminated and pinned by OnePath; ts is two timespecs on this frame, as utimensat reads.
        timespec* ts = stackalloc timespec[2];
        ts[0].tv_sec = q.AtimeSec; ts[0].tv_nsec = (long_t)q.AtimeNsec;
        ts[1].tv_sec = q.MtimeSec; ts[1].tv_nsec = (long_t)q.MtimeNsec;
        return utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
    });

    /// <summary>T_REMOVE: remove(3) = unlink, or rmdir when the path is a directory.</summary>
    public int Remove(in PathRequest req) => OnePath(req, static (byte* p, in PathRequest _) =>
    {
        // SAFETY: p is NUL-terminated and pinned by OnePath for both calls.
        if (unlink(p) == 0) return 0;
        if (!FilePolicy.RemoveAsDirectory(-errno)) return -1; // errno still unlink's for OnePath
        return rmdir(p);
    });

    /// <summary>T_LGETXATTR / T_LLISTXATTR. Size 0 asks for the size; otherwise at most what fits a reply. Names
    /// the <see cref="XattrPolicy"/> refuses look absent: ENODATA, and left out of lists (so a list is always read
    /// whole into our buffer, filtered, and then measured against the client's size).</summary>
    public int GetXattr(ProxyRequestType type, in GetXattrRequest req)
    {
        if (req.Size < 0) return -Errno.EINVAL;
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        byte[]? name = null;
        if (type == ProxyRequestType.GetXattr)
        {
            r = _name.Set(req.Name, out name);
            if (r < 0) return r;
            if (!_xattrs.Allows(NameOf(name))) return -ENODATA;
        }
        int size = type == ProxyRequestType.ListXattr ? ProxyLimits.MaxReplyStringLength
            : Math.Min(req.Size, ProxyLimits.MaxReplyStringLength);
        fixed (byte* p = &path[offset])
        fixed (byte* n = name)
        fixed (byte* d = _data)
        {
            // SAFETY: path and name are NUL-terminated and pinned; d has MaxBodySize >= size bytes.
            byte* buf = size == 0 ? null : d;
            nint rc = type == ProxyRequestType.GetXattr
                ? Sys.Lgetxattr(p, n, buf, (nuint)size)
                : Sys.Llistxattr(p, buf, (nuint)size);
            if (rc < 0) return -System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (type == ProxyRequestType.GetXattr) return (int)Math.Min(rc, int.MaxValue);
            int length = _xattrs.FilterList(_data.AsSpan(0, (int)rc));
            if (req.Size != 0 && length > req.Size) return -Errno.ERANGE;
            return length;
        }
    }

    /// <summary>T_LSETXATTR. The separate size must equal the value's length (QEMU's helper trusts it and could
    /// read past the value).</summary>
    public int SetXattr(in SetXattrRequest req)
    {
        if (req.Size != req.Value.Length) return -Errno.EINVAL;
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        r = _name.Set(req.Name, out var name);
        if (r < 0) return r;
        if (!_xattrs.Allows(NameOf(name))) return -EOPNOTSUPP;
        if (ExportReach.Exposed && NameOf(name).SequenceEqual("system.posix_acl_access"u8))
            return SetAccessAclExposed(path, offset, name, req);
        fixed (byte* p = &path[offset])
        fixed (byte* n = name)
        fixed (byte* v = req.Value)
        {
            // SAFETY: the strings are NUL-terminated (CPath) and the buffers pinned for the call.
            int rc = Sys.Lsetxattr(p, n, v, (nuint)req.Value.Length, req.Flags);
            return rc < 0 ? -System.Runtime.InteropServices.Marshal.GetLastPInvokeError() : 0;
        }
    }

    /// <summary>
    /// An access ACL on an export the uid can reach (<see cref="ExportReach"/>): the ACL's group entry sets the
    /// mode's group bits, and the kernel keeps S_ISGID when root sets it, so an ACL with group x on a setgid
    /// root file makes a setgid-root executable on the host path. Refused on a setgid file that is not a
    /// directory; checked and set on one inode (O_PATH, fstat, then fsetxattr on a reopened fd).
    /// </summary>
    private static int SetAccessAclExposed(byte[] path, int offset, byte[] name, in SetXattrRequest req)
    {
        int r = OpenPath(path, offset, O_NOFOLLOW, out var pathFd, out uint mode);
        if (r < 0) return r;
        using (pathFd)
        {
            uint type = mode & 0xF000u;
            if (type != 0x8000u && type != 0x4000u) return -EOPNOTSUPP; // only files and directories get ACLs here
            if (type == 0x8000u && ExportReach.PrivilegedMode(mode)) return -Errno.EPERM;
            int fd = ProcSelfFd.Reopen(pathFd!, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) return fd;
            using var file = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
            fixed (byte* n = name)
            fixed (byte* v = req.Value)
            {
                // SAFETY: name is NUL-terminated; value pinned; the marshalled SafeHandle keeps the fd open.
                int rc = Sys.Fsetxattr(file, n, v, (nuint)req.Value.Length, req.Flags);
                return rc < 0 ? -System.Runtime.InteropServices.Marshal.GetLastPInvokeError() : 0;
            }
        }
    }

    public int RemoveXattr(in PathRequest req)
    {
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        r = _name.Set(req.Second, out var name);
        if (r < 0) return r;
        if (!_xattrs.Allows(NameOf(name))) return -ENODATA;
        fixed (byte* p = &path[offset])
        fixed (byte* n = name)
        {
            // SAFETY: the strings are NUL-terminated (CPath) and the buffers pinned for the calls below.
            int rc = Sys.Lremovexattr(p, n);
            return rc < 0 ? -System.Runtime.InteropServices.Marshal.GetLastPInvokeError() : 0;
        }
    }

    /// <summary>T_GETVERSION: FS_IOC_GETVERSION where the export's filesystem has it (QEMU's list: ext2/3/4,
    /// btrfs, reiserfs, xfs), else 0 as QEMU answers. The file is opened through the same special-file policy.</summary>
    public int GetVersion(in PathRequest req, out ulong version)
    {
        version = 0;
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        if (!_getVersionSupported) return 0;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        r = OpenRegular(path, offset, O_RDONLY, out var fd);
        if (r < 0) return r;
        using (fd)
        {
            long v = 0;
            using var file = new FdUse(fd!);
            // SAFETY: FS_IOC_GETVERSION writes one long, into the local v; file keeps the fd open.
            if (ioctl(file.Fd, unchecked((int)FS_IOC_GETVERSION), &v) < 0) return -errno;
            version = (ulong)v;
            return 0;
        }
    }

    /// <summary>Whether the filesystem at "/" (the export, after pivot_root) supports FS_IOC_GETVERSION.</summary>
    public static bool ProbeGetVersion()
    {
        StatFs b;
        fixed (byte* root = "/\0"u8)
        {
            // SAFETY: NUL-terminated literal and a local struct, both fixed for the call.
            if (Sys.Statfs(root, &b) < 0) return false;
        }
        return (uint)b.f_type is 0xEF53u or 0x9123683Eu or 0x52654973u or 0x58465342u;
    }

    private delegate int OnePathOp(byte* path, in PathRequest req);
    private delegate int TwoPathOp(SafeFileHandle dirA, byte* a, SafeFileHandle dirB, byte* b);

    private int OnePath(in PathRequest req, OnePathOp op)
    {
        int r = _path1.Set(req.Path, out var path);
        if (r < 0) return r;
        using var cwd = LongPaths.Enter(path, out int offset, out r);
        if (r < 0) return r;
        fixed (byte* p = &path[offset])
        {
            // SAFETY: the strings are NUL-terminated (CPath) and the buffers pinned for the calls below.
            return op(p, req) < 0 ? -errno : 0;
        }
    }

    /// <summary>Link and rename: both paths resolved from directory fds, so either may be a long path
    /// (<see cref="LongPaths.Anchor"/>); short ones use the cwd, "/", as they are.</summary>
    private int TwoPaths(in PathRequest req, TwoPathOp op)
    {
        int r = _path1.Set(req.Path, out var a);
        if (r < 0) return r;
        r = _path2.Set(req.Second, out var b);
        if (r < 0) return r;
        SafeFileHandle? dirA = null, dirB = null;
        int offsetA = 0, offsetB = 0;
        try
        {
            if (IsLong(a) || IsLong(b))
            {
                r = LongPaths.Anchor(a, out dirA, out offsetA);
                if (r < 0) return r;
                r = LongPaths.Anchor(b, out dirB, out offsetB);
                if (r < 0) return r;
            }
            fixed (byte* pa = &a[offsetA])
            fixed (byte* pb = &b[offsetB])
            {
                // SAFETY: the strings are NUL-terminated (CPath) and the buffers pinned for the call.
                return op(dirA ?? Sys.AtFdCwd, pa, dirB ?? Sys.AtFdCwd, pb) < 0 ? -errno : 0;
            }
        }
        finally
        {
            dirA?.Dispose();
            dirB?.Dispose();
        }
    }

    private static bool IsLong(byte[] cstring) => Array.IndexOf(cstring, (byte)0) > LongPaths.KernelLimit;
}

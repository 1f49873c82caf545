using Microsoft.Win32.SafeHandles;
using VirtFs.Interop;
using VirtFs.ProxyFs.Protocol;
using static Tmds.Linux.LibC;

namespace VirtFs.Policy;

/// <summary>
/// The open and remove rules the root helper (src/Helper/Operations.cs) and the in-process
/// <c>LocalFileSystem</c> both apply. One source file compiled into both, so the two servers of one export
/// cannot drift apart; each adds only what its own position needs (the helper also refuses O_PATH, since it
/// hands fds across a process boundary).
/// </summary>
internal static class FilePolicy
{
    /// <summary>__O_TMPFILE without O_DIRECTORY (asm-generic/fcntl.h): enough to recognise O_TMPFILE.</summary>
    public const int O_TMPFILE_FLAG = 0x400000;

    /// <summary>Open never creates: O_CREAT would make a file with no owner policy (as root, in the helper;
    /// QEMU's 9p server strips O_CREAT before T_OPEN), O_TMPFILE an unnamed one. Only Create creates.
    /// The caller answers EINVAL.</summary>
    public static bool OpenRefuses(int flags) => (flags & (O_CREAT | O_TMPFILE_FLAG)) != 0;

    /// <summary>Create never makes an unnamed O_TMPFILE. The caller answers EINVAL.</summary>
    public static bool CreateRefuses(int flags) => (flags & O_TMPFILE_FLAG) != 0;

    /// <summary>
    /// What opening an existing object of this type (st_mode's S_IFMT bits, read on an O_PATH fd so the type
    /// cannot change before the reopen) answers: 0 for a regular file or directory; -ELOOP for a symlink (what
    /// open(O_NOFOLLOW) says); -ENXIO for anything else (CVE-2023-2861: a guest-made device node or fifo is
    /// never opened for it, as QEMU's close_if_special_file).
    /// </summary>
    public static int OpenableType(uint mode)
    {
        uint type = mode & 0xF000u;
        if (type == 0xA000u) return -Errno.ELOOP;
        return type == 0x8000u || type == 0x4000u ? 0 : -Errno.ENXIO;
    }

    /// <summary>Flags for the reopen through /proc/self/fd: O_NOFOLLOW goes (the last component there is the
    /// magic link itself), O_CREAT/O_EXCL go (the object exists), and O_NONBLOCK is always added: a lease a
    /// client holds on the file (fcntl F_SETLEASE through a handed-out fd) would otherwise park the serving
    /// thread for lease-break-time (45 s) on every open; now it answers EWOULDBLOCK. O_NOCTTY and O_CLOEXEC
    /// as for every fd we open.</summary>
    public static int ReopenFlags(int flags) =>
        (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL)) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;

    /// <summary>Takes the O_NONBLOCK of <see cref="ReopenFlags"/> back off unless the client asked for it.
    /// 0 or -errno.</summary>
    public static int ClearNonblockUnlessAsked(SafeFileHandle handle, int flags)
    {
        if ((flags & O_NONBLOCK) != 0) return 0;
        using var use = new FdUse(handle);
        int current = fcntl(use.Fd, F_GETFL);
        if (current < 0 || fcntl(use.Fd, F_SETFL, current & ~O_NONBLOCK) < 0) return -errno;
        return 0;
    }

    /// <summary>remove(3): unlink first, and rmdir only when unlink answered EISDIR (so a name is removed as
    /// what it is at that moment, and a directory is never unlinked).</summary>
    public static bool RemoveAsDirectory(int unlinkResult) => unlinkResult == -Errno.EISDIR;
}

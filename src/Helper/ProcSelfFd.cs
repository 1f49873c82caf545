using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.Helper;

/// <summary>
/// Reopens an O_PATH fd with real access flags through its /proc/self/fd entry, as virtiofsd does. This is how
/// the helper opens a file only after it has seen, on that very inode, what the file is: the O_PATH open runs
/// no driver or fifo code, fstat on it cannot be raced, and the reopen acts on the same inode whatever is
/// renamed meanwhile. The /proc/self/fd directory is opened once before the chroot; /proc is not inside the
/// export.
/// </summary>
internal static unsafe class ProcSelfFd
{
    private static SafeFileHandle? s_dir;

    /// <summary>Opens /proc/self/fd (sandbox step, before the chroot). Returns 0 or -errno.</summary>
    public static int Init()
    {
        fixed (byte* p = "/proc/self/fd\0"u8)
        {
            // SAFETY: NUL-terminated literal, pinned for the call.
            int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0) return -errno;
            s_dir = new SafeFileHandle(fd, ownsHandle: true);
            return 0;
        }
    }

    /// <summary>open("/proc/self/fd/N", flags): a new open file description of the inode <paramref name="pathFd"/>
    /// names. Returns the new fd or -errno. O_NOFOLLOW must not be in <paramref name="flags"/> (the magic link
    /// would then refuse itself with ELOOP).</summary>
    public static int Reopen(SafeFileHandle pathFd, int flags) => OnEntry(pathFd, &OpenEntry, flags & ~O_NOFOLLOW);

    /// <summary>chmod of the inode <paramref name="pathFd"/> (an O_PATH fd) names. Returns 0 or -errno.</summary>
    public static int Chmod(SafeFileHandle pathFd, uint mode) => OnEntry(pathFd, &ChmodEntry, (int)(mode & 0xFFFF));

    private static int OpenEntry(int dir, byte* name, int flags)
    {
        int fd = openat(dir, name, flags);
        return fd < 0 ? -errno : fd;
    }

    private static int ChmodEntry(int dir, byte* name, int mode) =>
        fchmodat(dir, name, (mode_t)(ushort)mode, 0) < 0 ? -errno : 0;

    /// <summary>Runs <paramref name="op"/>(the /proc/self/fd dir, "N", arg) for the fd number of
    /// <paramref name="pathFd"/>, which stays open (and its number ours) for the call.</summary>
    private static int OnEntry(SafeFileHandle pathFd, delegate*<int, byte*, int, int> op, int arg)
    {
        if (s_dir is null) return -EBADF;
        Span<byte> name = stackalloc byte[16]; // "2147483647" and its NUL fit
        bool added = false;
        try
        {
            pathFd.DangerousAddRef(ref added);
            ((int)pathFd.DangerousGetHandle()).TryFormat(name, out int length);
            name[length] = 0;
            fixed (byte* p = name)
            {
                // SAFETY: name is NUL-terminated stack memory; both fds are kept open by their SafeHandles.
                return op((int)s_dir.DangerousGetHandle(), p, arg);
            }
        }
        finally
        {
            if (added) pathFd.DangerousRelease();
        }
    }
}

using System.ComponentModel;
using Microsoft.Win32.SafeHandles;
using VirtFs.ProxyFs.Protocol;
using static Tmds.Linux.LibC;

namespace VirtFs.Helper;

/// <summary>
/// Paths longer than the kernel's PATH_MAX (4095 bytes before the NUL). A guest reaches them legitimately:
/// its own PATH_MAX bounds a path relative to its cwd, not the export-relative path a deep directory has, and
/// QEMU's built-in server walks component by component with no limit. A path syscall here takes the whole
/// path, so a long one is entered in chunks: the calling thread chdirs through prefixes (each cut at a '/'
/// and under the limit) and the syscall gets the short rest, relative to that cwd. Symlinks in the prefixes
/// resolve as they would in the whole path, inside the chroot.
/// <para>
/// The cwd is per thread: each connection runs on its own thread, which unshares its filesystem context
/// (unshare(CLONE_FS): cwd and root, no privilege needed) the first time it needs a long path, so other
/// connections keep cwd "/". <see cref="Leave"/> returns to "/" before the next request; if even that fails,
/// the connection ends rather than resolve later paths from a wrong directory.
/// </para>
/// </summary>
internal static unsafe class LongPaths
{
    /// <summary>Longest path (without NUL) a syscall takes.</summary>
    public const int KernelLimit = 4095;

    private const int CLONE_FS = 0x200;

    [ThreadStatic] private static bool t_unshared;

    /// <summary>
    /// For the NUL-terminated <paramref name="path"/>: 0 when it is short enough to use as it is (offset 0,
    /// cwd untouched); otherwise the thread's cwd is moved and <paramref name="offset"/> is where the rest
    /// starts, to be resolved from there, and the caller must call <see cref="Leave"/>. Negative errno on
    /// failure (a component over the limit, a prefix that is missing or not searchable), cwd back at "/".
    /// </summary>
    public static int Move(byte[] path, out int offset)
    {
        offset = 0;
        int length = Array.IndexOf(path, (byte)0);
        if (length <= KernelLimit) return 0;
        if (!t_unshared)
        {
            if (unshare(CLONE_FS) < 0) return -errno;
            t_unshared = true;
        }
        int start = 0;
        while (start < length && path[start] == (byte)'/') start++; // cwd is "/" already
        while (length - start > KernelLimit)
        {
            int cut = Array.LastIndexOf(path, (byte)'/', start + KernelLimit, KernelLimit + 1);
            if (cut <= start)
            {
                Leave();
                return -Errno.ENAMETOOLONG; // one component longer than any path: nothing to cut
            }
            path[cut] = 0;
            int rc, err = 0;
            fixed (byte* p = &path[start])
            {
                // SAFETY: path[cut] was just set to NUL, so p is a NUL-terminated prefix, pinned for the call.
                rc = chdir(p);
                if (rc < 0) err = errno;
            }
            path[cut] = (byte)'/';
            if (rc < 0)
            {
                Leave();
                return -err;
            }
            start = cut + 1;
            while (start < length && path[start] == (byte)'/') start++;
        }
        offset = start;
        return 0;
    }

    /// <summary>
    /// <see cref="Move"/> as a scope: <c>using var cwd = LongPaths.Enter(path, out int offset, out int r);</c>
    /// then resolve <c>&amp;path[offset]</c>; the cwd returns to "/" when the scope ends. Declared before an
    /// <see cref="Identity"/> scope, it moves and returns as root (whose search permission always holds), so
    /// returning to "/" cannot fail for want of the requester's permission.
    /// </summary>
    public static Cwd Enter(byte[] path, out int offset, out int error)
    {
        error = Move(path, out offset);
        return new Cwd(error == 0 && offset > 0);
    }

    public readonly struct Cwd(bool moved) : IDisposable
    {
        public void Dispose()
        {
            if (moved) Leave();
        }
    }

    /// <summary>Back to "/" after a <see cref="Move"/> that moved the cwd (offset &gt; 0).</summary>
    public static void Leave()
    {
        fixed (byte* root = "/\0"u8)
        {
            // SAFETY: a NUL-terminated literal, pinned for the call.
            if (chdir(root) < 0)
                throw new Win32Exception(errno, "cannot return to \"/\" after a long path; ending the connection");
        }
    }

    /// <summary>An O_PATH fd of the directory a long path's rest is relative to ("/" for a short path), for
    /// the two-path calls (rename, link) where one cwd cannot serve both paths. The cwd is "/" afterwards.</summary>
    public static int Anchor(byte[] path, out SafeFileHandle? dir, out int offset)
    {
        dir = null;
        int r = Move(path, out offset);
        if (r < 0) return r;
        fixed (byte* here = ".\0"u8)
        {
            // SAFETY: a NUL-terminated literal, pinned for the call.
            int fd = open(here, O_PATH | O_DIRECTORY | O_CLOEXEC);
            r = fd < 0 ? -errno : 0;
            if (fd >= 0) dir = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
        }
        if (offset > 0) Leave();
        return r;
    }
}

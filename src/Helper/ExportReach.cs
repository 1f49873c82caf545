using System.Text;
using Tmds.Linux;
using VirtFs.Helper.Interop;

namespace VirtFs.Helper;

/// <summary>
/// Start-up check: can the socket's uid reach the export by its host path? If it can, the fds the helper hands out
/// are not the only way in: a file the guest makes setuid root in the export (legitimate in the guest) could be run
/// from the host path with privilege, and the uid could hard-link its own files into the export for the helper to
/// chown. The sandbox cannot close that; the administrator does, with a 0700 parent directory (docs/security.md).
/// The check runs on a throw-away thread that takes the uid/gid as its own credentials (raw syscalls: this thread
/// only) and tries an O_PATH open of the export; the thread ends with those credentials.
/// </summary>
internal static unsafe class ExportReach
{
    /// <summary>
    /// Set once at start, before any connection: the socket's uid can reach the export by its host path. Then
    /// whatever the helper makes there is usable from the host without its mount's nosuid/nodev, so the helper
    /// refuses to make what would give that uid privilege: setuid files, setgid executables, device nodes
    /// (<see cref="PrivilegedMode"/>, <see cref="IsDevice"/>). Guests lose those only on an export set up against
    /// docs/security.md.
    /// </summary>
    public static bool Exposed { get; set; }

    /// <summary>A mode that grants privilege when the file is executed: S_ISUID, or S_ISGID with group execute
    /// (S_ISGID alone marks mandatory locking, and on a directory it only sets the group of new files).</summary>
    public static bool PrivilegedMode(uint mode) => (mode & 0x800) != 0 || (mode & 0x408) == 0x408;

    /// <summary>S_IFCHR or S_IFBLK.</summary>
    public static bool IsDevice(uint mode) => (mode & 0xF000) is 0x2000 or 0x6000;

    /// <summary>True when uid:gid (without supplementary groups) can look the export up by its path.</summary>
    public static bool IsReachable(string exportPath, uint uid, uint gid)
    {
        bool reachable = false;
        var thread = new Thread(() =>
        {
            if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_setgroups, 0, (void*)null) < 0) return;
            if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_setresgid, -1, (int)gid, -1) < 0) return;
            if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_setresuid, -1, (int)uid, -1) < 0) return;
            byte[] path = Encoding.UTF8.GetBytes(exportPath + "\0");
            fixed (byte* p = path)
            {
                // SAFETY: NUL-terminated, pinned.
                int fd = LibC.open(p, LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC);
                if (fd >= 0)
                {
                    reachable = true;
                    LibC.close(fd);
                }
            }
        }) { Name = "export reach check" };
        thread.Start();
        thread.Join();
        return reachable;
    }
}

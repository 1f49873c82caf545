using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using VirtFs.Helper.Interop;

namespace VirtFs.Helper;

/// <summary>
/// Confines the helper, one step per method, in a fixed order (each failure names its step):
/// (inherited fds already gone through <see cref="CleanExec"/>) close stray fds, chdir(export), chroot("."), chdir("/"), umask(0), drop supplementary groups,
/// no_new_privs, bounding set, capability sets. Credentials, capabilities and no_new_privs are per thread in
/// Linux, so this runs on the main thread before any serving thread exists; serving threads inherit it.
/// Threads the .NET runtime started before Main (finalizer and the like) keep root's sets; they never run
/// request code.
/// </summary>
internal static unsafe class Sandbox
{
    public sealed class SandboxException(string step, int errno)
        : Exception($"{step}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
    {
        public string Step { get; } = step;
    }

    /// <summary>The steps after the socket exists. <paramref name="keepFd"/> is the serving or listening socket.</summary>
    public static void Enter(string exportPath, int keepFd)
    {
        CloseInheritedFds(keepFd);
        EnterExport(exportPath);
        LibC.umask(0);
        DropSupplementaryGroups();
        SetNoNewPrivs();
        DropCapabilities();
    }

    /// <summary>Inherited fds were already dropped by <see cref="CleanExec"/> before the runtime restarted; this
    /// second pass closes anything still open without FD_CLOEXEC (the runtime opens its own with it), except the
    /// socket.</summary>
    public static void CloseInheritedFds(int keepFd)
    {
        var fds = new List<int>();
        foreach (string entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(System.IO.Path.GetFileName(entry), out int fd) && fd > 2 && fd != keepFd) fds.Add(fd);
        }
        foreach (int fd in fds)
        {
            int flags = LibC.fcntl(fd, LibC.F_GETFD);
            if (flags >= 0 && (flags & LibC.FD_CLOEXEC) == 0) LibC.close(fd);
        }
    }

    private static void EnterExport(string exportPath)
    {
        byte[] path = Encoding.UTF8.GetBytes(exportPath + "\0");
        fixed (byte* p = path)
        fixed (byte* dot = ".\0"u8)
        fixed (byte* root = "/\0"u8)
        {
            // SAFETY: NUL-terminated, pinned strings.
            if (LibC.chdir(p) < 0) throw new SandboxException("chdir(export)", LibC.errno);
            if (LibC.chroot(dot) < 0) throw new SandboxException("chroot(\".\")", LibC.errno);
            if (LibC.chdir(root) < 0) throw new SandboxException("chdir(\"/\")", LibC.errno);
        }
    }

    /// <summary>Root's supplementary groups would grant group access to whatever the requester creates in;
    /// raw syscall so only this thread (and the threads it creates) change.</summary>
    private static void DropSupplementaryGroups()
    {
        if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_setgroups, 0, (void*)null) < 0)
            throw new SandboxException("setgroups(0)", LibC.errno);
    }

    /// <summary>No exec from here on could gain privileges (prctl(2) PR_SET_NO_NEW_PRIVS).</summary>
    private static void SetNoNewPrivs()
    {
        if (Native.prctl(Native.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            throw new SandboxException("prctl(PR_SET_NO_NEW_PRIVS)", Marshal.GetLastPInvokeError());
    }

    private static void DropCapabilities()
    {
        int r = Capabilities.DropBoundingSet();
        if (r < 0) throw new SandboxException("prctl(PR_CAPBSET_DROP)", -r);
        if (Native.prctl(Native.PR_CAP_AMBIENT, Native.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
            throw new SandboxException("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", Marshal.GetLastPInvokeError());
        r = Capabilities.Set(Capabilities.KeptMask);
        if (r < 0) throw new SandboxException("capset", -r);
    }
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using System.Text;
using Tmds.Linux;
using VirtFs.Helper.Interop;

namespace VirtFs.Helper;

/// <summary>
/// Confines the helper, one step per method, in a fixed order (each failure names its step):
/// (inherited fds already gone through <see cref="CleanExec"/>) close stray fds, open /proc/self/fd (for
/// <see cref="ProcSelfFd"/>), a detached nosuid,nodev,noexec copy of the export's mounts as the root
/// (<see cref="EnterExport"/>), umask(0), drop supplementary groups,
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
        int r = ProcSelfFd.Init();
        if (r < 0) throw new SandboxException("open(/proc/self/fd)", -r);
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

    /// <summary>The detached copy of the export's mount tree. Never closed: closing the last reference to an
    /// OPEN_TREE_CLONE fd dissolves the tree, which would cut the sub-mounts off the export.</summary>
    private static SafeFileHandle? s_exportTree;

    /// <summary>
    /// The helper's root becomes a private, detached copy of the export's mounts, flagged nosuid,nodev,noexec.
    /// Every fd the helper hands out lives on that copy, so whoever holds one (a backend taken over by a guest):
    /// <list type="number">
    /// <item>cannot run a setuid-root file with privilege, or run anything at all, through it: nosuid and
    /// noexec hold for fexecve (create 0:0 + chmod 04755 + open + fexecve);</item>
    /// <item>cannot open a device node the guest made, even by openat() on a handed-out directory fd: nodev
    /// (the helper's own refusal only covers its own opens);</item>
    /// <item>cannot leave the export with "..": the copy's root mount has no parent, so ".." at its root stays
    /// there for every process, not only for the chrooted helper;</item>
    /// <item>cannot link or rename its own files from outside into the export (to have the helper chown and
    /// chmod them): link and rename across mounts fail with EXDEV.</item>
    /// </list>
    /// open_tree(OPEN_TREE_CLONE|AT_RECURSIVE) copies the export and the mounts below it; mount_setattr
    /// (AT_RECURSIVE) flags every one of them; fchdir + chroot(".") + chdir("/") enter it. The host's own
    /// mounts are not changed. Needs CAP_SYS_ADMIN and CAP_SYS_CHROOT, dropped later in this sandbox.
    /// </summary>
    private static void EnterExport(string exportPath)
    {
        byte[] path = Encoding.UTF8.GetBytes(exportPath + "\0");
        fixed (byte* p = path)
        fixed (byte* empty = "\0"u8)
        fixed (byte* dot = ".\0"u8)
        fixed (byte* root = "/\0"u8)
        {
            // SAFETY: NUL-terminated, pinned strings; attr lives on this frame for the call.
            long tree = (ssize_t)LibC.syscall(Syscalls.SYS_open_tree, LibC.AT_FDCWD, p,
                MountApi.OPEN_TREE_CLONE | MountApi.OPEN_TREE_CLOEXEC | MountApi.AT_RECURSIVE);
            if (tree < 0) throw new SandboxException("open_tree(export, OPEN_TREE_CLONE|AT_RECURSIVE)", LibC.errno);
            s_exportTree = new SafeFileHandle((IntPtr)tree, ownsHandle: true);

            var attr = new MountApi.MountAttr
            {
                AttrSet = MountApi.MOUNT_ATTR_NOSUID | MountApi.MOUNT_ATTR_NODEV | MountApi.MOUNT_ATTR_NOEXEC,
            };
            if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_mount_setattr, (int)tree, empty,
                    MountApi.AT_EMPTY_PATH | MountApi.AT_RECURSIVE, &attr, sizeof(MountApi.MountAttr)) < 0)
                throw new SandboxException("mount_setattr(nosuid,nodev,noexec, AT_RECURSIVE)", LibC.errno);

            if (LibC.fchdir((int)tree) < 0) throw new SandboxException("fchdir(export tree)", LibC.errno);
            if (LibC.chroot(dot) < 0) throw new SandboxException("chroot(\".\")", LibC.errno);
            // After chroot the cwd could still be outside the root; "/" is the export now.
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

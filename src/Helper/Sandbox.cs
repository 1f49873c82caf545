using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using System.Text;
using Tmds.Linux;
using VirtFs.Helper.Interop;

namespace VirtFs.Helper;

/// <summary>
/// Confines the helper, one step per method, in a fixed order (each failure names its step):
/// (inherited fds already gone through <see cref="CleanExec"/>) close stray fds, open /proc/self/fd (for
/// <see cref="ProcSelfFd"/>), a mount namespace whose root is the export, nosuid,nodev,noexec
/// (<see cref="EnterExport"/>), umask(0), drop supplementary groups,
/// no_new_privs, bounding set, capability sets. Credentials, capabilities and no_new_privs are per thread in
/// Linux, so this runs on the main thread before any serving thread exists; serving threads inherit it.
/// Threads the .NET runtime started before Main (finalizer and the like) keep root's sets; they never run
/// request code.
/// </summary>
internal static unsafe class Sandbox
{
    public sealed class SandboxException(string step, int errno)
        : Exception($"{step}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");

    /// <summary>The steps after the socket exists. <paramref name="keepFd"/> is the serving or listening socket;
    /// <paramref name="readOnly"/> is -r.</summary>
    public static void Enter(string exportPath, int keepFd, bool readOnly)
    {
        CloseInheritedFds(keepFd);
        int r = ProcSelfFd.Init();
        if (r < 0) throw new SandboxException("open(/proc/self/fd)", -r);
        EnterExport(exportPath, readOnly);
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

    /// <summary>
    /// The helper moves into a mount namespace of its own whose root is the export, bound on itself (with the
    /// mounts below it) and flagged nosuid,nodev,noexec on every one of those mounts. Every fd the helper hands
    /// out lives on that mount, so whoever holds one (a backend taken over by a guest):
    /// <list type="number">
    /// <item>cannot run a setuid-root file with privilege, or run anything at all, through it: nosuid and
    /// noexec hold for fexecve (create 0:0 + chmod 04755 + open + fexecve);</item>
    /// <item>cannot open a device node the guest made, even by openat() on a handed-out directory fd: nodev
    /// (the helper's own refusal only covers its own opens);</item>
    /// <item>cannot leave the export with "..": at the root of the namespace ".." climbs to the mountpoint under
    /// the export and the kernel steps straight back onto the export mounted there, for every process, not only
    /// for the chrooted helper;</item>
    /// <item>cannot link or rename its own files from outside into the export (to have the helper chown and
    /// chmod them): link and rename across mounts fail with EXDEV;</item>
    /// <item>cannot follow /proc/PID/root out of the export: a proc, sysfs or other kernel file system mounted
    /// below the export is detached (<see cref="KernelMounts"/>);</item>
    /// <item>with -r, cannot change the export through a handed-out fd (openat(dirfd, O_CREAT), unlinkat,
    /// renameat, a read-only fd reopened O_RDWR through /proc/self/fd): the helper's refusals
    /// (<see cref="ReadOnlyExport"/>) only cover its own calls, so every mount is read-only as well;</item>
    /// <item>cannot move the export's mount into a namespace of its own (unshare(CLONE_NEWUSER|CLONE_NEWNS) +
    /// move_mount) and mount the host's "/" inside it for the helper to walk into: move_mount only takes mounts
    /// of the caller's namespace or of an anonymous one. (An open_tree(OPEN_TREE_CLONE) copy, tried first, is an
    /// anonymous namespace: that attack worked against it.)</item>
    /// </list>
    /// Steps (virtiofsd's namespace sandbox): unshare(CLONE_NEWNS), make every mount private (nothing propagates
    /// in or out), rbind the export onto itself, mount_setattr(nosuid,nodev,noexec, AT_RECURSIVE), detach kernel
    /// file systems below it,
    /// chdir(export), pivot_root(".", "."), detach the old root stacked on top, chdir("/"). The host's mounts are
    /// not changed. unshare moves only this thread; the connection threads it creates later inherit it.
    /// Needs CAP_SYS_ADMIN, dropped later in this sandbox.
    /// </summary>
    private static void EnterExport(string exportPath, bool readOnly)
    {
        byte[] path = Encoding.UTF8.GetBytes(exportPath + "\0");
        fixed (byte* p = path)
        fixed (byte* empty = "\0"u8)
        fixed (byte* dot = ".\0"u8)
        fixed (byte* root = "/\0"u8)
        {
            // SAFETY: NUL-terminated, pinned strings (path has its NUL appended above); attr lives on this frame
            // and its size is passed; boundHandle keeps bound open through the mount_setattr call.
            if (LibC.unshare(Sys.CLONE_NEWNS) < 0) throw new SandboxException("unshare(CLONE_NEWNS)", LibC.errno);
            if (Sys.Mount(null, root, null, Sys.MS_REC | Sys.MS_PRIVATE, null) < 0)
                throw new SandboxException("mount(\"/\", MS_REC|MS_PRIVATE)", Marshal.GetLastPInvokeError());
            if (Sys.Mount(p, p, null, Sys.MS_BIND | Sys.MS_REC, null) < 0)
                throw new SandboxException("mount(export, export, MS_BIND|MS_REC)", Marshal.GetLastPInvokeError());

            int bound = LibC.open(p, LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC);
            if (bound < 0) throw new SandboxException("open(export, O_PATH)", LibC.errno);
            using (var boundHandle = new SafeFileHandle((IntPtr)bound, ownsHandle: true))
            {
                var attr = new MountApi.MountAttr
                {
                    AttrSet = MountApi.MOUNT_ATTR_NOSUID | MountApi.MOUNT_ATTR_NODEV | MountApi.MOUNT_ATTR_NOEXEC
                        | (readOnly ? MountApi.MOUNT_ATTR_RDONLY : 0),
                };
                if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_mount_setattr, bound, empty,
                        MountApi.AT_EMPTY_PATH | MountApi.AT_RECURSIVE, &attr, sizeof(MountApi.MountAttr)) < 0)
                    throw new SandboxException(readOnly ? "mount_setattr(ro,nosuid,nodev,noexec, AT_RECURSIVE)"
                        : "mount_setattr(nosuid,nodev,noexec, AT_RECURSIVE)", LibC.errno);
                // A proc (or sysfs, cgroup, ...) below the export is the host's: /proc/PID/root leads out.
                // (mountinfo spells mount points canonically: the export's own path may pass through symlinks.)
                string canonical = new FileInfo($"/proc/self/fd/{bound}").LinkTarget
                    ?? throw new SandboxException("readlink(/proc/self/fd/<export>)", LibC.errno);
                foreach (string what in KernelMounts.DetachBelow(canonical))
                    Log.Warn($"detached the host's {what} from the helper's view of the export: a kernel file system " +
                        "there would lead outside it (docs/security.md)");
            }

            if (LibC.chdir(p) < 0) throw new SandboxException("chdir(export)", LibC.errno);
            if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_pivot_root, dot, dot) < 0)
                throw new SandboxException("pivot_root(\".\", \".\")", LibC.errno);
            // The old root is now stacked on top of the export at "/": detach it, and with it the host's mounts.
            if (LibC.umount2(dot, Sys.MNT_DETACH) < 0) throw new SandboxException("umount2(old root, MNT_DETACH)", LibC.errno);
            if (LibC.chdir(root) < 0) throw new SandboxException("chdir(\"/\")", LibC.errno);
        }
    }

    /// <summary>Root's supplementary groups would grant group access to whatever the requester creates in;
    /// raw syscall so only this thread (and the threads it creates) change.</summary>
    private static void DropSupplementaryGroups()
    {
        // SAFETY: a count of 0 with a null list: the kernel reads nothing.
        if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_setgroups, 0, (void*)null) < 0)
            throw new SandboxException("setgroups(0)", LibC.errno);
    }

    /// <summary>No exec from here on could gain privileges (prctl(2) PR_SET_NO_NEW_PRIVS).</summary>
    private static void SetNoNewPrivs()
    {
        if (Sys.Prctl(Sys.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            throw new SandboxException("prctl(PR_SET_NO_NEW_PRIVS)", Marshal.GetLastPInvokeError());
    }

    private static void DropCapabilities()
    {
        int r = Capabilities.DropBoundingSet();
        if (r < 0) throw new SandboxException("prctl(PR_CAPBSET_DROP)", -r);
        if (Sys.Prctl(Sys.PR_CAP_AMBIENT, Sys.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
            throw new SandboxException("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", Marshal.GetLastPInvokeError());
        r = Capabilities.Set(Capabilities.KeptMask);
        if (r < 0) throw new SandboxException("capset", -r);
    }
}

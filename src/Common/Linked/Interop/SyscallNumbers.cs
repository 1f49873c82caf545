namespace VirtFs.Interop;

/// <summary>x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl) for the calls made raw through
/// Tmds.LibC's syscall(): credential changes must stay per-thread (glibc's wrappers broadcast them to every
/// thread via SIGSETXID), and capget/capset, seccomp, pivot_root and mount_setattr are not in libc. Both
/// executables are built for linux-x64 only.</summary>
internal static class Syscalls
{
    public const int SYS_pivot_root = 155;
    public const int SYS_setgroups = 116;
    public const int SYS_setresuid = 117;
    public const int SYS_setresgid = 119;
    public const int SYS_setfsuid = 122;
    public const int SYS_setfsgid = 123;
    public const int SYS_capget = 125;
    public const int SYS_capset = 126;
    public const int SYS_seccomp = 317;
    public const int SYS_close_range = 436;
    public const int SYS_mount_setattr = 442;

    /// <summary>close_range(2) flag: mark the range close-on-exec instead of closing it now.</summary>
    public const uint CLOSE_RANGE_CLOEXEC = 1u << 2;
}

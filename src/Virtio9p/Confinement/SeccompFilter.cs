using System.Runtime.InteropServices;

namespace VirtFs.Virtio9p.Confinement;

/// <summary>What a syscall outside the allowlist does (virtiofsd's --seccomp values).</summary>
public enum SeccompMode
{
    /// <summary>SECCOMP_RET_KILL_PROCESS: the whole backend dies with SIGSYS.</summary>
    Kill,
    /// <summary>SECCOMP_RET_LOG: the call runs and the kernel logs it (dmesg / audit): for finding misses.</summary>
    Log,
    /// <summary>No filter (no_new_privs is still set).</summary>
    None,
}

/// <summary>struct sock_filter (linux/filter.h): one classic BPF instruction.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct SockFilter(ushort Code, byte Jt, byte Jf, uint K);

/// <summary>
/// The backend's seccomp allowlist as a classic BPF program (seccomp(2), Documentation/userspace-api/seccomp_filter.rst).
/// The backend talks to a guest we treat as hostile; if the guest takes the process over, the filter leaves it the
/// syscalls a 9P-over-vhost-user server and the .NET runtime need, and nothing to execute programs, debug other
/// processes, change identity, mount, create namespaces or load kernel code with.
/// Layout: check the architecture, refuse the x32 ABI, then one JEQ per allowed syscall (hot ones first) jumping
/// to ALLOW, then the few syscalls whose arguments are checked, then the default action.
/// </summary>
public static class SeccompFilter
{
    // linux/bpf_common.h
    internal const ushort BPF_LD = 0x00, BPF_JMP = 0x05, BPF_RET = 0x06;
    internal const ushort BPF_W = 0x00, BPF_ABS = 0x20;
    internal const ushort BPF_JEQ = 0x10, BPF_JSET = 0x40, BPF_K = 0x00;

    // linux/seccomp.h
    public const uint SECCOMP_RET_KILL_PROCESS = 0x80000000;
    public const uint SECCOMP_RET_ERRNO = 0x00050000;
    public const uint SECCOMP_RET_LOG = 0x7ffc0000;
    public const uint SECCOMP_RET_ALLOW = 0x7fff0000;

    // linux/audit.h: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
    public const uint AUDIT_ARCH_X86_64 = 0xC000003E;
    /// <summary>__X32_SYSCALL_BIT: x32 syscalls share the x86_64 audit arch; their numbers carry this bit.</summary>
    public const uint X32_SYSCALL_BIT = 0x40000000;

    // struct seccomp_data offsets: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian: low half first)
    public const uint OffsetNr = 0, OffsetArch = 4, OffsetArg0Low = 16, OffsetArg1Low = 24, OffsetArg2Low = 32;

    public const uint CLONE_THREAD = 0x00010000;
    public const uint AF_UNIX = 1;
    public const uint ENOSYS = (uint)Errno.ENOSYS, ENOTTY = (uint)Errno.ENOTTY, EPERM = (uint)Errno.EPERM;
    public const uint PROT_EXEC = 4;
    public const uint PR_SET_NAME = 15, PR_GET_NAME = 16;

    /// <summary>ioctl requests allowed: what the runtime's Console and socket code ask of stdio and sockets.
    /// TIOCSTI (typing into a terminal the backend was started from) and every device ioctl stay out.</summary>
    public static readonly (string Name, uint Request)[] AllowedIoctls =
    [
        ("TCGETS", 0x5401), ("TIOCGWINSZ", 0x5413), ("FIONREAD", 0x541B), ("FIONBIO", 0x5421), ("FIOCLEX", 0x5451),
        // Rgetattr's gen: the inode generation of an open file (P9Server.ReadGeneration).
        ("FS_IOC_GETVERSION", 0x80087601),
    ];

    /// <summary>x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl) allowed without looking at arguments,
    /// grouped by why the backend needs them. The first groups are the hot path.</summary>
    public static readonly (string Name, int Nr)[] Allowed =
    [
        // Worker threads park and wake; the runtime's locks, Monitor, SemaphoreSlim.
        ("futex", 202), ("sched_yield", 24),
        // The vhost-user loop: kick eventfds in epoll, the front-end socket's messages and their fds (SCM_RIGHTS),
        // the helper's socket (9P I/O on fds it hands us).
        ("epoll_wait", 232), ("epoll_pwait", 281), ("epoll_pwait2", 441), ("epoll_ctl", 233), ("epoll_create1", 291),
        ("read", 0), ("write", 1), ("readv", 19), ("writev", 20),
        ("pread64", 17), ("pwrite64", 18), ("preadv", 295), ("pwritev", 296), ("preadv2", 327), ("pwritev2", 328),
        ("recvmsg", 47), ("sendmsg", 46), ("recvfrom", 45), ("sendto", 44),
        ("poll", 7), ("ppoll", 271), ("eventfd2", 290),
        // 9P requests served on fds the helper donated: directory listing, stat, xattrs, sync, locks, sizes.
        ("getdents64", 217), ("lseek", 8), ("fstat", 5), ("newfstatat", 262), ("statx", 332), ("fstatfs", 138), ("statfs", 137),
        ("stat", 4), ("lstat", 6),
        ("fgetxattr", 193), ("flistxattr", 196), ("fsetxattr", 190), ("fremovexattr", 199),
        ("fsync", 74), ("fdatasync", 75), ("ftruncate", 77), ("fallocate", 285), ("flock", 73), ("fcntl", 72),
        ("close", 3), ("dup", 32), ("dup2", 33), ("dup3", 292), ("close_range", 436), ("fadvise64", 221),
        // Guest memory (memfd regions from the front-end) and the runtime's heap: GC, stacks. mmap and mprotect
        // are argument-checked below.
        ("munmap", 11), ("madvise", 28), ("mremap", 25), ("brk", 12),
        ("mincore", 27), ("msync", 26), ("membarrier", 324),
        // The vhost-user socket: accept on the one bound before confinement; with --connect or a re-listen after
        // the front-end left, made after it (unlink a stale path, bind, listen); reconnecting to the helper when it
        // restarts. socket() itself is argument-checked below.
        ("accept4", 288), ("bind", 49), ("listen", 50), ("connect", 42), ("unlink", 87), ("unlinkat", 263),
        ("shutdown", 48), ("getsockname", 51), ("getpeername", 52), ("getsockopt", 55), ("setsockopt", 54),
        ("socketpair", 53),
        // Threads: the runtime starts thread-pool and GC threads at any time (clone is argument-checked below) and
        // sets scheduling policy and priority (without CAP_SYS_NICE these can only lower them).
        ("set_robust_list", 273), ("rseq", 334), ("set_tid_address", 218), ("sched_getaffinity", 204),
        ("sched_setaffinity", 203), ("sched_getparam", 143), ("sched_getscheduler", 145), ("sched_setscheduler", 144), ("getcpu", 309),
        ("sched_get_priority_max", 146), ("sched_get_priority_min", 147), ("getpriority", 140), ("setpriority", 141),
        ("sigaltstack", 131), ("exit", 60), ("exit_group", 231), ("gettid", 186), ("getpid", 39), ("getppid", 110),
        // Signals: the runtime's handlers (null references, stack overflow, activation injection for GC
        // suspension uses tgkill to its own threads), SIGTERM for a clean stop.
        ("rt_sigaction", 13), ("rt_sigprocmask", 14), ("rt_sigreturn", 15), ("tgkill", 234), ("tkill", 200),
        ("rt_sigtimedwait", 128), ("rt_sigsuspend", 130), ("restart_syscall", 219),
        // Time and timers: Stopwatch, Task.Delay, the logger's timestamps.
        ("clock_gettime", 228), ("clock_getres", 229), ("clock_nanosleep", 230), ("nanosleep", 35), ("gettimeofday", 96),
        ("timerfd_create", 283), ("timerfd_settime", 286), ("timerfd_gettime", 287),
        // Harmless process facts the runtime reads (environment probing, limits, memory size for GC heuristics).
        ("getrandom", 318), ("prlimit64", 302), ("getrlimit", 97), ("getrusage", 98), ("uname", 63), ("sysinfo", 99), ("times", 100),
        ("getuid", 102), ("geteuid", 107), ("getgid", 104), ("getegid", 108), ("getresuid", 118), ("getresgid", 120),
        ("getcwd", 79), ("capget", 125), ("arch_prctl", 158), ("pipe2", 293), ("memfd_create", 319),
        // The runtime reads /proc and /sys lazily (cgroup limits, /proc/self/maps on stack probes, CPU counts),
        // TimeZoneInfo reads /etc/localtime for the log's timestamps.
        ("openat", 257), ("readlinkat", 267), ("readlink", 89), ("faccessat", 269), ("faccessat2", 439), ("access", 21),
    ];

    /// <summary>Added only in rootless mode (--shared-dir, issue 16), where the backend itself makes, names and
    /// changes files inside the shared directory: what the helper does for it otherwise. Every path these take is
    /// relative to a directory fd reached with openat2 RESOLVE_IN_ROOT, or a /proc/self/fd/N of a pinned object
    /// (LocalFileSystem); none of them executes, mounts, or changes identity.</summary>
    public static readonly (string Name, int Nr)[] SharedDirAllowed =
    [
        // Every lookup: openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS.
        ("openat2", 437),
        // Creating and naming objects relative to a confined directory fd.
        ("mkdirat", 258), ("mknodat", 259), ("symlinkat", 266), ("linkat", 265), ("renameat", 264), ("renameat2", 316),
        // Attributes of a pinned object (through /proc/self/fd/N where there is no fd form).
        ("fchownat", 260), ("fchown", 93), ("fchmodat", 268), ("fchmodat2", 452), ("chmod", 90), ("fchmod", 91),
        ("truncate", 76), ("utimensat", 280),
        // Extended attributes, including the mapped-xattr model's user.virtfs.*, on /proc/self/fd/N.
        ("getxattr", 191), ("setxattr", 188), ("listxattr", 194), ("removexattr", 197),
    ];

    /// <summary>The program for <paramref name="mode"/> (not <see cref="SeccompMode.None"/>); with
    /// <paramref name="servesFiles"/> (rootless mode) <see cref="SharedDirAllowed"/> is allowed as well.</summary>
    public static SockFilter[] Build(SeccompMode mode, bool servesFiles = false)
    {
        uint otherwise = mode switch
        {
            SeccompMode.Kill => SECCOMP_RET_KILL_PROCESS,
            SeccompMode.Log => SECCOMP_RET_LOG,
            _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "no filter for this mode"),
        };
        var asm = new Assembler();
        // A foreign ABI (i386 int 0x80 or x32) has other numbers: everything checked below would mean something else.
        asm.Load(OffsetArch);
        asm.JumpIf(BPF_JEQ, AUDIT_ARCH_X86_64, null, "kill");
        asm.Load(OffsetNr);
        asm.JumpIf(BPF_JSET, X32_SYSCALL_BIT, "kill", null);
        foreach ((_, int nr) in Allowed)
        {
            asm.JumpIf(BPF_JEQ, (uint)nr, "allow", null);
        }
        if (servesFiles)
        {
            foreach ((_, int nr) in SharedDirAllowed)
            {
                asm.JumpIf(BPF_JEQ, (uint)nr, "allow", null);
            }
        }
        // mmap, mprotect: never executable. Native AOT code is all mapped at exec time; nothing after start needs new
        // code pages, and a guest that took the backend over gets no place for its own code through a syscall.
        // Refused with EPERM (what a noexec mount answers) rather than killed: a lazy dlopen inside glibc (NSS)
        // fails cleanly instead of taking the backend down; logged in log mode.
        asm.JumpIf(BPF_JEQ, 9, "prot", null);
        asm.JumpIf(BPF_JEQ, 10, null, "not-prot");
        asm.Label("prot");
        asm.Load(OffsetArg2Low);
        asm.JumpIf(BPF_JSET, PROT_EXEC, null, "allow");
        asm.Return(mode == SeccompMode.Log ? SECCOMP_RET_LOG : SECCOMP_RET_ERRNO | EPERM);
        asm.Label("not-prot");
        // clone: threads only (CLONE_THREAD). No fork, so nothing to execve from, and no new namespaces:
        // CLONE_NEWUSER and CLONE_NEWNS are refused with CLONE_THREAD's required CLONE_FS/CLONE_SIGHAND.
        asm.JumpIf(BPF_JEQ, 56, null, "not-clone");
        asm.Load(OffsetArg0Low);
        asm.JumpIf(BPF_JSET, CLONE_THREAD, "allow", "otherwise");
        asm.Label("not-clone");
        // clone3 passes its flags in memory, out of the filter's reach: ENOSYS makes glibc fall back to clone.
        asm.JumpIf(BPF_JEQ, 435, null, "not-clone3");
        asm.Return(SECCOMP_RET_ERRNO | ENOSYS);
        asm.Label("not-clone3");
        // prctl: naming threads only (the runtime's and ours); nothing that touches capabilities, dumpability,
        // the ptracer or the memory map.
        asm.JumpIf(BPF_JEQ, 157, null, "not-prctl");
        asm.Load(OffsetArg0Low);
        asm.JumpIf(BPF_JEQ, PR_SET_NAME, "allow", null);
        asm.JumpIf(BPF_JEQ, PR_GET_NAME, "allow", "otherwise");
        asm.Label("not-prctl");
        // ioctl: the few terminal and socket requests above. Others fail with ENOTTY in kill mode (a surprise
        // request from the runtime must not kill the backend; ENOTTY is what a non-terminal answers anyway), and
        // are logged in log mode so they can be found.
        asm.JumpIf(BPF_JEQ, 16, null, "not-ioctl");
        asm.Load(OffsetArg1Low);
        foreach ((_, uint request) in AllowedIoctls)
        {
            asm.JumpIf(BPF_JEQ, request, "allow", null);
        }
        asm.Return(mode == SeccompMode.Log ? SECCOMP_RET_LOG : SECCOMP_RET_ERRNO | ENOTTY);
        asm.Label("not-ioctl");
        // socket: Unix sockets only (the vhost-user listener, the helper); no network.
        asm.JumpIf(BPF_JEQ, 41, null, "otherwise");
        asm.Load(OffsetArg0Low);
        asm.JumpIf(BPF_JEQ, AF_UNIX, "allow", "otherwise");
        asm.Label("otherwise");
        asm.Return(otherwise);
        asm.Label("allow");
        asm.Return(SECCOMP_RET_ALLOW);
        asm.Label("kill");
        asm.Return(SECCOMP_RET_KILL_PROCESS);
        return asm.Finish();
    }

    /// <summary>A forward-only assembler: jumps name labels defined later; offsets must fit a byte.</summary>
    private sealed class Assembler
    {
        private readonly List<(ushort Code, string? Jt, string? Jf, uint K)> _code = [];
        private readonly Dictionary<string, int> _labels = [];

        public void Load(uint offset) => _code.Add(((ushort)(BPF_LD | BPF_W | BPF_ABS), null, null, offset));

        /// <summary>A conditional jump; a null target falls through to the next instruction.</summary>
        public void JumpIf(ushort op, uint k, string? jt, string? jf) => _code.Add(((ushort)(BPF_JMP | op | BPF_K), jt, jf, k));

        public void Return(uint action) => _code.Add(((ushort)(BPF_RET | BPF_K), null, null, action));

        public void Label(string name) => _labels.Add(name, _code.Count);

        public SockFilter[] Finish()
        {
            var program = new SockFilter[_code.Count];
            for (int i = 0; i < _code.Count; i++)
            {
                (ushort code, string? jt, string? jf, uint k) = _code[i];
                program[i] = new SockFilter(code, Offset(i, jt), Offset(i, jf), k);
            }
            return program;
        }

        private byte Offset(int from, string? label)
        {
            if (label is null)
            {
                return 0;
            }
            int delta = _labels[label] - from - 1;
            if (delta is < 0 or > byte.MaxValue)
            {
                throw new InvalidOperationException($"BPF jump from {from} to '{label}' does not fit: {delta}");
            }
            return (byte)delta;
        }
    }
}

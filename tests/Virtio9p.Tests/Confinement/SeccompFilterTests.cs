using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using VirtFs.Virtio9p.Confinement;
using static VirtFs.Virtio9p.Confinement.SeccompFilter;

namespace VirtFs.Virtio9p.Tests.Confinement;

/// <summary>
/// Runs the backend's seccomp program in a small classic-BPF interpreter (the subset seccomp accepts that the program
/// uses) over hand-made struct seccomp_data: the verdicts, not the instruction list, are what is checked.
/// </summary>
public class SeccompFilterTests
{
    private const uint I386 = 0x40000003; // AUDIT_ARCH_I386

    // x86_64 numbers of calls a guest that owns the backend would want; none may pass.
    public static TheoryData<string, int> Forbidden => new()
    {
        { "execve", 59 }, { "execveat", 322 }, { "fork", 57 }, { "vfork", 58 }, { "ptrace", 101 },
        { "process_vm_readv", 310 }, { "process_vm_writev", 311 }, { "mount", 165 }, { "umount2", 166 },
        { "pivot_root", 155 }, { "chroot", 161 }, { "unshare", 272 }, { "setns", 308 }, { "setuid", 105 },
        { "setgid", 106 }, { "setresuid", 117 }, { "setresgid", 119 }, { "setgroups", 116 }, { "setfsuid", 122 },
        { "capset", 126 }, { "keyctl", 250 }, { "add_key", 248 }, { "request_key", 249 }, { "bpf", 321 },
        { "perf_event_open", 298 }, { "kexec_load", 246 }, { "kexec_file_load", 320 }, { "init_module", 175 },
        { "finit_module", 313 }, { "delete_module", 176 }, { "open_by_handle_at", 304 }, { "name_to_handle_at", 303 },
        { "userfaultfd", 323 }, { "io_uring_setup", 425 }, { "seccomp", 317 }, { "kill", 62 }, { "open", 2 },
        { "chmod", 90 }, { "fchmod", 91 }, { "fchown", 93 }, { "mknodat", 259 }, { "symlinkat", 266 },
        { "linkat", 265 }, { "renameat2", 316 }, { "mkdirat", 258 }, { "reboot", 169 }, { "swapon", 167 },
        { "acct", 163 }, { "personality", 135 }, { "fanotify_init", 300 }, { "memfd_secret", 447 },
    };

    [Theory]
    [InlineData(SeccompMode.Kill)]
    [InlineData(SeccompMode.Log)]
    public void Every_allowlisted_syscall_is_allowed(SeccompMode mode)
    {
        SockFilter[] program = Build(mode);
        foreach ((string name, int nr) in Allowed)
        {
            Assert.True(Run(program, nr) == SECCOMP_RET_ALLOW, $"{name} ({nr}) not allowed");
        }
    }

    [Theory]
    [MemberData(nameof(Forbidden))]
    public void Dangerous_syscalls_kill_the_process_or_are_logged(string name, int nr)
    {
        Assert.DoesNotContain(Allowed, a => a.Nr == nr || a.Name == name);
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(Build(SeccompMode.Kill), nr));
        Assert.Equal(SECCOMP_RET_LOG, Run(Build(SeccompMode.Log), nr));
    }

    [Theory]
    [InlineData(SeccompMode.Kill)]
    [InlineData(SeccompMode.Log)]
    public void Rootless_mode_adds_the_file_syscalls_and_nothing_else(SeccompMode mode)
    {
        SockFilter[] rootless = Build(mode, servesFiles: true);
        SockFilter[] helper = Build(mode);
        uint otherwise = mode == SeccompMode.Kill ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_LOG;
        foreach ((string name, int nr) in Allowed)
        {
            Assert.True(Run(rootless, nr) == SECCOMP_RET_ALLOW, $"{name} ({nr}) not allowed in rootless mode");
        }
        foreach ((string name, int nr) in SharedDirAllowed)
        {
            Assert.True(Run(rootless, nr) == SECCOMP_RET_ALLOW, $"{name} ({nr}) not allowed in rootless mode");
            Assert.True(Run(helper, nr) == otherwise, $"{name} ({nr}) allowed in helper mode");
        }
    }

    [Theory]
    [MemberData(nameof(Forbidden))]
    public void Rootless_mode_still_forbids_what_is_not_file_work(string name, int nr)
    {
        if (SharedDirAllowed.Any(a => a.Nr == nr))
        {
            return; // chmod, mknodat, ...: the rootless server's own work (on confined paths)
        }
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(Build(SeccompMode.Kill, servesFiles: true), nr));
        Assert.DoesNotContain(name, SharedDirAllowed.Select(a => a.Name));
    }

    [Theory]
    [InlineData(SeccompMode.Kill)]
    [InlineData(SeccompMode.Log)]
    public void Foreign_abis_are_killed_in_every_mode(SeccompMode mode)
    {
        SockFilter[] program = Build(mode);
        // i386 via int 0x80: getpid is 20 there, and 39 (x86_64 getpid) is umount.
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 20, arch: I386));
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 39, arch: I386));
        // x32: same audit arch, number | __X32_SYSCALL_BIT.
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, unchecked((int)(X32_SYSCALL_BIT | 39))));
        Assert.Equal(SECCOMP_RET_ALLOW, Run(program, 39));
    }

    [Fact]
    public void Clone_makes_threads_only_and_clone3_falls_back()
    {
        SockFilter[] program = Build(SeccompMode.Kill);
        const ulong pthreadFlags = 0x3d0f00; // glibc's create_thread: VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
        Assert.Equal(SECCOMP_RET_ALLOW, Run(program, 56, pthreadFlags));
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 56, 17));                 // fork(): SIGCHLD
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 56, 0x10000000 | 17));    // CLONE_NEWUSER
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 56, 0x4111));             // vfork-style: VM|VFORK|SIGCHLD
        Assert.Equal(SECCOMP_RET_ERRNO | ENOSYS, Run(program, 435));
    }

    [Fact]
    public void Sockets_are_unix_only()
    {
        SockFilter[] program = Build(SeccompMode.Kill);
        Assert.Equal(SECCOMP_RET_ALLOW, Run(program, 41, AF_UNIX));
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 41, 2));   // AF_INET
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 41, 16));  // AF_NETLINK
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 41, 40));  // AF_VSOCK
        // The upper half of the 64-bit register is not a way around: the check is on what the kernel reads (int).
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 41, 0x1_0000_0002));
    }

    [Fact]
    public void Prctl_names_threads_only()
    {
        SockFilter[] program = Build(SeccompMode.Kill);
        Assert.Equal(SECCOMP_RET_ALLOW, Run(program, 157, PR_SET_NAME));
        Assert.Equal(SECCOMP_RET_ALLOW, Run(program, 157, PR_GET_NAME));
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 157, 4));          // PR_SET_DUMPABLE
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 157, 0x59616d61)); // PR_SET_PTRACER
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(program, 157, 35));         // PR_SET_MM
    }

    [Fact]
    public void Ioctl_allows_the_terminal_and_socket_queries_and_refuses_the_rest()
    {
        SockFilter[] kill = Build(SeccompMode.Kill), log = Build(SeccompMode.Log);
        foreach ((string name, uint request) in AllowedIoctls)
        {
            Assert.True(Run(kill, 16, 1, request) == SECCOMP_RET_ALLOW, name);
        }
        const uint TIOCSTI = 0x5412, TCSETS = 0x5402, FICLONE = 0x40049409;
        foreach (uint request in new[] { TIOCSTI, TCSETS, FICLONE })
        {
            Assert.Equal(SECCOMP_RET_ERRNO | ENOTTY, Run(kill, 16, 1, request));
            Assert.Equal(SECCOMP_RET_LOG, Run(log, 16, 1, request));
        }
    }

    [Fact]
    public void Memory_is_never_made_executable()
    {
        SockFilter[] kill = Build(SeccompMode.Kill), log = Build(SeccompMode.Log);
        const ulong ReadWrite = 3, ReadExec = 5, None = 0;
        foreach (int nr in new[] { 9, 10 }) // mmap, mprotect
        {
            Assert.Equal(SECCOMP_RET_ALLOW, Run(kill, nr, arg2: ReadWrite));
            Assert.Equal(SECCOMP_RET_ALLOW, Run(kill, nr, arg2: None));
            Assert.Equal(SECCOMP_RET_ERRNO | EPERM, Run(kill, nr, arg2: ReadExec));
            Assert.Equal(SECCOMP_RET_LOG, Run(log, nr, arg2: ReadExec));
        }
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, Run(kill, 329, arg2: ReadWrite)); // pkey_mprotect: not at all
    }

    [Fact]
    public void No_filter_for_none()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Build(SeccompMode.None));
    }

    [Fact]
    public void Program_fits_the_kernel_and_the_struct_matches_sock_filter()
    {
        SockFilter[] program = Build(SeccompMode.Kill);
        Assert.InRange(program.Length, 1, 4096); // BPF_MAXINSNS
        Assert.Equal(8, Unsafe.SizeOf<SockFilter>());
        Assert.Equal(SECCOMP_RET_KILL_PROCESS, program[^1].K); // the last instruction is a return, no fall-off
        Assert.Equal(Allowed.Length, Allowed.Select(a => a.Nr).Distinct().Count()); // no number listed twice
    }

    /// <summary>Evaluates <paramref name="program"/> like the kernel's seccomp: A register, absolute word loads from
    /// seccomp_data, conditional jumps with immediate operands, return.</summary>
    private static uint Run(SockFilter[] program, int nr, ulong arg0 = 0, ulong arg1 = 0, uint arch = AUDIT_ARCH_X86_64,
        ulong arg2 = 0)
    {
        Span<byte> data = stackalloc byte[64];
        BinaryPrimitives.WriteInt32LittleEndian(data, nr);
        BinaryPrimitives.WriteUInt32LittleEndian(data[4..], arch);
        BinaryPrimitives.WriteUInt64LittleEndian(data[16..], arg0);
        BinaryPrimitives.WriteUInt64LittleEndian(data[24..], arg1);
        BinaryPrimitives.WriteUInt64LittleEndian(data[32..], arg2);
        uint a = 0;
        for (int pc = 0; ; pc++)
        {
            Assert.InRange(pc, 0, program.Length - 1);
            SockFilter ins = program[pc];
            switch (ins.Code)
            {
                case 0x20: // BPF_LD | BPF_W | BPF_ABS
                    Assert.True(ins.K % 4 == 0 && ins.K + 4 <= 64, $"bad load offset {ins.K}");
                    a = BinaryPrimitives.ReadUInt32LittleEndian(data[(int)ins.K..]);
                    break;
                case 0x15: // BPF_JMP | BPF_JEQ | BPF_K
                    pc += a == ins.K ? ins.Jt : ins.Jf;
                    break;
                case 0x45: // BPF_JMP | BPF_JSET | BPF_K
                    pc += (a & ins.K) != 0 ? ins.Jt : ins.Jf;
                    break;
                case 0x06: // BPF_RET | BPF_K
                    return ins.K;
                default:
                    Assert.Fail($"instruction {pc}: opcode 0x{ins.Code:x} not expected");
                    break;
            }
        }
    }
}

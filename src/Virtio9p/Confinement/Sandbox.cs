using System.Runtime.InteropServices;
using Tmds.Linux;

namespace VirtFs.Virtio9p.Confinement;

/// <summary>
/// The backend confines itself before it reads anything from the front-end or the guest (issue 12): no
/// capabilities, no_new_privs, then a seccomp allowlist on every thread. Fixed order, one error per step, and any
/// failure stops the start: a backend that runs unconfined when it was asked to be confined is the worse outcome.
/// </summary>
internal static unsafe class Sandbox
{
    // linux/seccomp.h
    private const uint SECCOMP_SET_MODE_FILTER = 1, SECCOMP_FILTER_FLAG_TSYNC = 1;
    // linux/capability.h
    private const int CAP_SETPCAP = 8;

    /// <summary>struct sock_fprog: unsigned short len, then (8-aligned) the instruction pointer.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct SockFprog { public ushort Len; public SockFilter* Filter; }

    /// <param name="servesFiles">Rootless mode: the backend itself serves the shared directory, and the filter
    /// allows the file syscalls that needs (<see cref="SeccompFilter.SharedDirAllowed"/>).</param>
    public static void Apply(SeccompMode mode, bool servesFiles = false)
    {
        DropCapabilities();
        if (Sys.Prctl(Sys.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        {
            throw new ConfinementException("prctl(PR_SET_NO_NEW_PRIVS)", Marshal.GetLastPInvokeError());
        }
        if (mode != SeccompMode.None)
        {
            InstallFilter(SeccompFilter.Build(mode, servesFiles));
        }
    }

    /// <summary>
    /// Empties the bounding set (only possible with CAP_SETPCAP: skipped without it, and then there is nothing to
    /// regain anyway under no_new_privs), the ambient set, and effective/permitted/inheritable. capset acts on the
    /// calling thread only, and the runtime started threads before Main: those are checked, not assumed.
    /// </summary>
    private static void DropCapabilities()
    {
        CapHeader header = new() { Version = CapHeader.Version3, Pid = 0 };
        CapData* data = stackalloc CapData[2];
        // SAFETY: header and the two data words (version 3: capabilities 0-31, 32-63) live on this frame.
        if (Sys.Capget(&header, data) < 0)
        {
            throw new ConfinementException("capget", LibC.errno);
        }
        if ((data[0].Effective & (1u << CAP_SETPCAP)) != 0)
        {
            for (int cap = 0; cap < 64; cap++)
            {
                if (Sys.Prctl(Sys.PR_CAPBSET_DROP, (nuint)cap, 0, 0, 0) == 0)
                {
                    continue;
                }
                int err = Marshal.GetLastPInvokeError();
                if (err == LibC.EINVAL)
                {
                    break; // past CAP_LAST_CAP
                }
                throw new ConfinementException($"prctl(PR_CAPBSET_DROP, {cap})", err);
            }
        }
        // EINVAL: a kernel without ambient capabilities (before 4.3) has none to clear.
        if (Sys.Prctl(Sys.PR_CAP_AMBIENT, Sys.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0
            && Marshal.GetLastPInvokeError() is int ambientErr && ambientErr != LibC.EINVAL)
        {
            throw new ConfinementException("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", ambientErr);
        }
        bool holdsAny = data[0].Effective != 0 || data[0].Permitted != 0 || data[0].Inheritable != 0
            || data[1].Effective != 0 || data[1].Permitted != 0 || data[1].Inheritable != 0;
        if (holdsAny)
        {
            data[0] = default;
            data[1] = default;
            // SAFETY: as above; all-zero sets are always a permitted change (only dropping).
            if (Sys.Capset(&header, data) < 0)
            {
                throw new ConfinementException("capset", LibC.errno);
            }
        }
        foreach (string task in Directory.GetDirectories("/proc/self/task"))
        {
            foreach (string line in File.ReadLines(Path.Combine(task, "status")))
            {
                if ((line.StartsWith("CapEff:", StringComparison.Ordinal) || line.StartsWith("CapPrm:", StringComparison.Ordinal))
                    && line.AsSpan(7).Trim().TrimStart('0').Length != 0)
                {
                    throw new ConfinementException(
                        $"thread {Path.GetFileName(task)} still holds capabilities ({line.Trim()}): start the backend without capabilities",
                        0);
                }
            }
        }
    }

    /// <summary>seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC): the runtime already runs threads, and a
    /// filter set with prctl(PR_SET_SECCOMP) would cover the calling thread (and its later children) only.</summary>
    private static void InstallFilter(SockFilter[] program)
    {
        fixed (SockFilter* filter = program)
        {
            SockFprog prog = new() { Len = checked((ushort)program.Length), Filter = filter };
            // SAFETY: prog and the pinned program stay valid for the call; the kernel copies the program in.
            long r = (ssize_t)LibC.syscall(Syscalls.SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
            if (r < 0)
            {
                throw new ConfinementException("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)", LibC.errno);
            }
            if (r > 0)
            {
                // TSYNC could not move thread r onto the filter (it has a diverging filter of its own).
                throw new ConfinementException($"seccomp TSYNC failed on thread {r}", 0);
            }
        }
    }
}

/// <summary>A confinement step failed; the backend does not start.</summary>
public sealed class ConfinementException(string step, int errno)
    : Exception(errno == 0 ? step : $"{step}: errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})")
{
    public string Step { get; } = step;
    public int Errno { get; } = errno;
}

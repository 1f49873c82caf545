using System.Runtime.InteropServices;
using Tmds.Linux;
using VirtFs.Helper.Interop;

namespace VirtFs.Helper;

/// <summary>
/// The helper's capability sets (capabilities(7)). Only these seven stay, as in QEMU's init_capabilities:
/// CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETGID, SETUID, MKNOD. capset(2) changes the calling thread only, so
/// the sandbox applies them on the main thread before any serving thread is created (threads inherit).
/// </summary>
internal static unsafe class Capabilities
{
    public const int CAP_CHOWN = 0, CAP_DAC_OVERRIDE = 1, CAP_FOWNER = 3, CAP_FSETID = 4,
        CAP_SETGID = 6, CAP_SETUID = 7, CAP_MKNOD = 27;

    public static readonly int[] Kept = [CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_SETGID, CAP_SETUID, CAP_MKNOD];

    public static uint KeptMask => Mask(Kept);

    /// <summary>While acting for a non-root requester: only DAC_OVERRIDE, because supplementary groups are not
    /// switched (QEMU's setugid comment); FSETID/FOWNER/CHOWN/MKNOD off so the kernel applies the requester's
    /// rules (setgid bit clearing, device nodes).</summary>
    public static uint RequesterMask => 1u << CAP_DAC_OVERRIDE;

    public static uint Mask(ReadOnlySpan<int> caps)
    {
        uint m = 0;
        foreach (int c in caps) m |= 1u << c;
        return m;
    }

    /// <summary>capset on the calling thread: permitted = the kept set, effective as given, inheritable empty.
    /// Returns 0 or -errno.</summary>
    public static int Set(uint effective)
    {
        CapHeader h = new() { Version = CapHeader.Version3, Pid = 0 };
        CapData* d = stackalloc CapData[2];
        d[0] = new CapData { Effective = effective, Permitted = KeptMask, Inheritable = 0 };
        d[1] = default; // capabilities 32..63: none kept
        // SAFETY: header and two data words live on this stack frame for the syscall.
        return Sys.Capset(&h, d) < 0 ? -LibC.errno : 0;
    }

    /// <summary>Adds <paramref name="mask"/> to the calling thread's effective set, keeping its permitted and
    /// inheritable sets as they are (capget, then capset). Returns 0 or -errno.</summary>
    public static int RaiseEffective(uint mask)
    {
        CapHeader h = new() { Version = CapHeader.Version3, Pid = 0 };
        CapData* d = stackalloc CapData[2];
        // SAFETY: header and two data words live on this stack frame for both syscalls.
        if (Sys.Capget(&h, d) < 0) return -LibC.errno;
        d[0].Effective |= mask & d[0].Permitted;
        return Sys.Capset(&h, d) < 0 ? -LibC.errno : 0;
    }

    /// <summary>Drops every capability but the kept ones from the bounding set (needs CAP_SETPCAP, so it runs
    /// before <see cref="Set"/>). Stops at the first EINVAL: past CAP_LAST_CAP.</summary>
    public static int DropBoundingSet()
    {
        uint kept = KeptMask;
        for (int cap = 0; cap < 64; cap++)
        {
            if (cap < 32 && (kept & (1u << cap)) != 0) continue;
            if (Sys.Prctl(Sys.PR_CAPBSET_DROP, (nuint)cap, 0, 0, 0) == 0) continue;
            int err = Marshal.GetLastPInvokeError();
            if (err == LibC.EINVAL) return 0;
            return -err;
        }
        return 0;
    }
}

using Tmds.Linux;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>capset(2), raw: changes the calling thread's sets only. 0, or -1 with errno set.</summary>
    internal static int Capset(CapHeader* header, CapData* data) =>
        (int)(long)(ssize_t)LibC.syscall(Syscalls.SYS_capset, header, data);
}

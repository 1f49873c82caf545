using System.Runtime.InteropServices;
using Tmds.Linux;

namespace VirtFs.Interop;

/// <summary>struct __user_cap_header_struct (linux/capability.h): 8 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CapHeader
{
    public uint Version;
    public int Pid;

    /// <summary>_LINUX_CAPABILITY_VERSION_3: two <see cref="CapData"/> words, capabilities 0-31 and 32-63.</summary>
    public const uint Version3 = 0x20080522;
}

/// <summary>struct __user_cap_data_struct (linux/capability.h): 12 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CapData
{
    public uint Effective, Permitted, Inheritable;
}

internal static unsafe partial class Sys
{
    /// <summary>capget(2), raw (glibc's is deprecated and Tmds.LibC lacks it). <paramref name="data"/> must
    /// hold two words for version 3. 0, or -1 with errno set.</summary>
    internal static int Capget(CapHeader* header, CapData* data) =>
        (int)(long)(ssize_t)LibC.syscall(Syscalls.SYS_capget, header, data);
}

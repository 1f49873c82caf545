using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    internal const ulong MS_NOSUID = 0x2, MS_NODEV = 0x4, MS_NOEXEC = 0x8;
    internal const ulong MS_BIND = 0x1000, MS_REC = 0x4000, MS_PRIVATE = 0x40000;
    internal const int MNT_DETACH = 2;
    internal const int CLONE_NEWNS = 0x20000;

    /// <summary>mount(2); Tmds.LibC 0.5.0 has umount2 and unshare but not mount.</summary>
    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true)]
    internal static partial int Mount(byte* source, byte* target, byte* fstype, ulong flags, void* data);
}

using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>statfs(2) by path: Tmds.LibC lacks it. The helper asks it of names inside its chroot.</summary>
    [LibraryImport("libc", EntryPoint = "statfs", SetLastError = true)]
    internal static partial int Statfs(byte* path, StatFs* buffer);
}

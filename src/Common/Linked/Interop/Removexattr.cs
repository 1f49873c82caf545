using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>removexattr(2) on "/proc/self/fd/N" (see <see cref="Getxattr"/> for why not lremovexattr).</summary>
    [LibraryImport("libc", EntryPoint = "removexattr", SetLastError = true)]
    internal static partial int Removexattr(byte* path, byte* name);
}

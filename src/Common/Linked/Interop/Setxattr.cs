using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>setxattr(2) on "/proc/self/fd/N" (see <see cref="Getxattr"/> for why not lsetxattr).</summary>
    [LibraryImport("libc", EntryPoint = "setxattr", SetLastError = true)]
    internal static partial int Setxattr(byte* path, byte* name, byte* value, nuint size, int flags);
}

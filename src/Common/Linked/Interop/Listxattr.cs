using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>listxattr(2) on "/proc/self/fd/N" (see <see cref="Getxattr"/> for why not llistxattr).</summary>
    [LibraryImport("libc", EntryPoint = "listxattr", SetLastError = true)]
    internal static partial nint Listxattr(byte* path, byte* list, nuint size);
}

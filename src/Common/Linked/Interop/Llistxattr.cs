using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>llistxattr(2): a final symlink is acted on as itself.</summary>
    [LibraryImport("libc", EntryPoint = "llistxattr", SetLastError = true)]
    internal static partial nint Llistxattr(byte* path, byte* list, nuint size);
}

using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>lsetxattr(2): a final symlink is acted on as itself.</summary>
    [LibraryImport("libc", EntryPoint = "lsetxattr", SetLastError = true)]
    internal static partial int Lsetxattr(byte* path, byte* name, byte* value, nuint size, int flags);
}

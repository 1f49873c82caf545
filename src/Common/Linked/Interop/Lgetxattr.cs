using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>lgetxattr(2): a final symlink is acted on as itself (the helper, by name inside its chroot).</summary>
    [LibraryImport("libc", EntryPoint = "lgetxattr", SetLastError = true)]
    internal static partial nint Lgetxattr(byte* path, byte* name, byte* value, nuint size);
}

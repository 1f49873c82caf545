using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>lremovexattr(2): a final symlink is acted on as itself.</summary>
    [LibraryImport("libc", EntryPoint = "lremovexattr", SetLastError = true)]
    internal static partial int Lremovexattr(byte* path, byte* name);
}

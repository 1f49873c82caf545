using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static partial class Sys
{
    /// <summary>setsid(2): Tmds.LibC lacks it.</summary>
    [LibraryImport("libc", EntryPoint = "setsid", SetLastError = true)]
    internal static partial int Setsid();
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>getdents64(2) (glibc >= 2.30 exports it): Tmds.LibC lacks it. Treaddir needs the raw
    /// d_off cookies, which readdir(3) hides.</summary>
    [LibraryImport("libc", EntryPoint = "getdents64", SetLastError = true)]
    internal static partial nint Getdents64(SafeFileHandle fd, byte* buffer, nuint count);
}

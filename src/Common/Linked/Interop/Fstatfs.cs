using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>fstatfs(2): Tmds.LibC lacks it. Works on an O_PATH fd, so Tstatfs needs no open of the object.</summary>
    [LibraryImport("libc", EntryPoint = "fstatfs", SetLastError = true)]
    internal static partial int Fstatfs(SafeFileHandle fd, StatFs* buffer);
}

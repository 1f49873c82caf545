using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>fsetxattr(2): on an open fd, so a check made on that inode (fstat) holds for the change.</summary>
    [LibraryImport("libc", EntryPoint = "fsetxattr", SetLastError = true)]
    internal static partial int Fsetxattr(SafeFileHandle fd, byte* name, byte* value, nuint size, int flags);
}

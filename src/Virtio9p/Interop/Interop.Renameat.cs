using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VirtFs.Virtio9p.Interop;

internal static unsafe partial class Sys
{
    /// <summary>renameat(2): Tmds.LibC lacks it. Both names are resolved against directory fds we resolved
    /// inside the export, so neither side can name something outside it.</summary>
    [LibraryImport("libc", EntryPoint = "renameat", SetLastError = true)]
    internal static partial int Renameat(SafeFileHandle oldDirectory, byte* oldName, SafeFileHandle newDirectory, byte* newName);
}

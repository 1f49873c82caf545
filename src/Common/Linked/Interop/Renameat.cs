using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>renameat(2): Tmds.LibC lacks it. Neither name's last component is followed if it is a symlink;
    /// each is resolved from a directory fd the caller resolved inside the export (or <see cref="AtFdCwd"/>).
    /// The backend's seccomp filter allows renameat only in rootless mode (SharedDirAllowed in
    /// src/Virtio9p/Confinement/SeccompFilter.cs); in helper mode the helper renames.</summary>
    [LibraryImport("libc", EntryPoint = "renameat", SetLastError = true)]
    internal static partial int Renameat(SafeFileHandle oldDirectory, byte* oldName, SafeFileHandle newDirectory, byte* newName);
}

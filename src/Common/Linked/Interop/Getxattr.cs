using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>getxattr(2): Tmds.LibC lacks the xattr family. The backend calls it only on "/proc/self/fd/N" for
    /// an O_PATH|O_NOFOLLOW fd: the following variant is the one that reaches the object behind the magic link
    /// (lgetxattr would act on the procfs link itself), and the magic link never goes past that object, so a
    /// symlink is acted on as itself, like lgetxattr on its name.</summary>
    [LibraryImport("libc", EntryPoint = "getxattr", SetLastError = true)]
    internal static partial nint Getxattr(byte* path, byte* name, byte* value, nuint size);
}

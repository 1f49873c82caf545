using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

internal static unsafe partial class Native
{
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint llistxattr(byte* path, byte* list, nuint size);
}

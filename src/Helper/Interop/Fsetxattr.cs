using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

internal static unsafe partial class Native
{
    [LibraryImport("libc", SetLastError = true)]
    public static partial int fsetxattr(int fd, byte* name, byte* value, nuint size, int flags);
}

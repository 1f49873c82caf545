using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

internal static partial class Native
{
    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsid();
}

using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

internal static unsafe partial class Native
{
    /// <summary>rename(2): neither path's last component is followed if it is a symlink.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int rename(byte* oldpath, byte* newpath);
}

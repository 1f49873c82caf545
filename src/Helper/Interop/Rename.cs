using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

internal static unsafe partial class Native
{
    /// <summary>renameat(2) (Tmds.LibC has no binding): neither path's last component is followed if it is
    /// a symlink.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int renameat(int olddirfd, byte* oldpath, int newdirfd, byte* newpath);
}

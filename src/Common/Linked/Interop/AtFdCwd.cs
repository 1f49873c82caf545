using Microsoft.Win32.SafeHandles;

namespace VirtFs.Interop;

internal static partial class Sys
{
    /// <summary>AT_FDCWD (-100) as a handle for the *at calls that take SafeHandles: "resolve from the cwd".
    /// Not owned, so disposing it closes nothing.</summary>
    public static readonly SafeFileHandle AtFdCwd = new((IntPtr)(-100), ownsHandle: false);
}

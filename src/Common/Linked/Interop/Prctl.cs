using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static partial class Sys
{
    internal const int PR_CAPBSET_DROP = 24;
    internal const int PR_SET_NO_NEW_PRIVS = 38;
    internal const int PR_CAP_AMBIENT = 47;
    internal const int PR_CAP_AMBIENT_CLEAR_ALL = 4;

    /// <summary>prctl(2): Tmds.LibC lacks it. The capability and no_new_privs options act on the calling thread
    /// only.</summary>
    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    internal static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}

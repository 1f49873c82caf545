using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

internal static unsafe partial class Native
{
    /// <summary>execve(2); returns only on failure.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int execve(byte* path, byte** argv, byte** envp);
}

using System.Runtime.InteropServices;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>execve(2); returns only on failure.</summary>
    [LibraryImport("libc", EntryPoint = "execve", SetLastError = true)]
    internal static partial int Execve(byte* path, byte** argv, byte** envp);
}

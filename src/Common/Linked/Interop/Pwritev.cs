using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>pwritev(2): Tmds.LibC lacks it. Writes straight from guest buffers (zero-copy Twrite).</summary>
    [LibraryImport("libc", EntryPoint = "pwritev", SetLastError = true)]
    internal static partial nint Pwritev(SafeFileHandle fd, iovec* iov, int iovcnt, long offset);
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>preadv(2): Tmds.LibC lacks it. Reads straight into guest buffers (zero-copy Tread).</summary>
    [LibraryImport("libc", EntryPoint = "preadv", SetLastError = true)]
    internal static partial nint Preadv(SafeFileHandle fd, iovec* iov, int iovcnt, long offset);
}

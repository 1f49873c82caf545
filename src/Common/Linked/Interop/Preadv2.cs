using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;

namespace VirtFs.Interop;

internal static unsafe partial class Sys
{
    /// <summary>preadv2(2) flag: fail with EAGAIN instead of waiting for the disk (data not in the page cache).</summary>
    internal const int RWF_NOWAIT = 0x00000008;

    /// <summary>preadv2(2): Tmds.LibC lacks it. Reads straight into guest buffers (zero-copy Tread); with flags 0 it
    /// is preadv(2), with RWF_NOWAIT the queue thread's read that leaves a read the page cache cannot answer to a
    /// worker instead of stalling the ring on the disk.</summary>
    [LibraryImport("libc", EntryPoint = "preadv2", SetLastError = true)]
    internal static partial nint Preadv2(SafeFileHandle fd, iovec* iov, int iovcnt, long offset, int flags);
}

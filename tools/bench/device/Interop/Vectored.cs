using System.Runtime.InteropServices;
using Tmds.Linux;

namespace VirtFs.DeviceBench.Interop;

/// <summary>preadv(2)/pwritev(2) for the floor loops (Tmds.LibC 0.5.0 lacks them).</summary>
internal static unsafe partial class Vectored
{
    [LibraryImport("libc", EntryPoint = "preadv", SetLastError = true)]
    public static partial nint Preadv(int fd, iovec* iov, int count, long offset);

    [LibraryImport("libc", EntryPoint = "pwritev", SetLastError = true)]
    public static partial nint Pwritev(int fd, iovec* iov, int count, long offset);
}

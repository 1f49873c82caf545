using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

/// <summary>struct statfs on x86_64 (bits/statfs.h): all fields are long/unsigned long except f_fsid (2 ints).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct StatFsBuf
{
    public long f_type;
    public long f_bsize;
    public ulong f_blocks;
    public ulong f_bfree;
    public ulong f_bavail;
    public ulong f_files;
    public ulong f_ffree;
    public int f_fsid0;
    public int f_fsid1;
    public long f_namelen;
    public long f_frsize;
    public long f_flags;
    public long f_spare0, f_spare1, f_spare2, f_spare3;
}

internal static unsafe partial class Native
{
    [LibraryImport("libc", SetLastError = true)]
    public static partial int statfs(byte* path, StatFsBuf* buf);
}

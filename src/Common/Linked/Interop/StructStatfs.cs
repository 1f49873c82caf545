using System.Runtime.InteropServices;

namespace VirtFs.Interop;

/// <summary>struct statfs on 64-bit Linux (asm-generic/statfs.h, __statfs_word = long): 120 bytes, every field a
/// long except f_fsid (two ints). Mirrored for statfs(2) and fstatfs(2) (Sys.Statfs, Sys.Fstatfs); the layout
/// tests are in tests/Virtio9p.Tests/FileSystem/LocalFileSystemTests.cs and tests/Helper.Tests/HelperLayoutTests.cs.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct StatFs
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

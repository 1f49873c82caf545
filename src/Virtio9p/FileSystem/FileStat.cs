using Tmds.Linux;
using VirtFs.ProxyFs;

namespace VirtFs.Virtio9p.FileSystem;

/// <summary>What Rgetattr reports about a file, from either a proxy lstat or a local statx on an open fd.</summary>
public readonly record struct FileStat(
    ulong Device, ulong Inode, uint Mode, uint Uid, uint Gid, ulong LinkCount, ulong RawDevice, ulong Size,
    ulong BlockSize, ulong Blocks, Timestamp Access, Timestamp Modify, Timestamp Change, Timestamp Birth,
    bool HasBirth)
{
    public const uint TypeMask = 0xF000; // S_IFMT
    public const uint TypeDirectory = 0x4000;
    public const uint TypeRegular = 0x8000;
    public const uint TypeSymlink = 0xA000;

    public bool IsDirectory => (Mode & TypeMask) == TypeDirectory;
    public bool IsSymlink => (Mode & TypeMask) == TypeSymlink;
    public bool IsRegular => (Mode & TypeMask) == TypeRegular;

    public static FileStat FromProxy(in ProxyStat s) => new(
        s.Dev, s.Ino, s.Mode, s.Uid, s.Gid, s.Nlink, s.Rdev, s.Size, s.Blksize, s.Blocks,
        new((long)s.AtimeSec, (uint)s.AtimeNsec), new((long)s.MtimeSec, (uint)s.MtimeNsec),
        new((long)s.CtimeSec, (uint)s.CtimeNsec), default, HasBirth: false);

    public static FileStat FromStatx(in statx s)
    {
        const uint StatxBtime = 0x800; // STATX_BTIME: set in stx_mask only when the filesystem has it
        return new(
            MakeDevice(s.stx_dev_major, s.stx_dev_minor), s.stx_ino, s.stx_mode, s.stx_uid, s.stx_gid,
            s.stx_nlink, MakeDevice(s.stx_rdev_major, s.stx_rdev_minor), s.stx_size, s.stx_blksize, s.stx_blocks,
            new(s.stx_atime.tv_sec, s.stx_atime.tv_nsec), new(s.stx_mtime.tv_sec, s.stx_mtime.tv_nsec),
            new(s.stx_ctime.tv_sec, s.stx_ctime.tv_nsec), new(s.stx_btime.tv_sec, s.stx_btime.tv_nsec),
            (s.stx_mask & StatxBtime) != 0);
    }

    /// <summary>glibc's makedev(3) encoding, so local and proxy device numbers compare equal.</summary>
    public static ulong MakeDevice(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) |
        ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);
}

public readonly record struct Timestamp(long Seconds, uint Nanoseconds);

/// <summary>Rstatfs fields (statfs(2)).</summary>
public readonly record struct FileSystemStats(
    uint Type, uint BlockSize, ulong Blocks, ulong FreeBlocks, ulong AvailableBlocks, ulong Files, ulong FreeFiles,
    ulong FileSystemId, uint NameLength);

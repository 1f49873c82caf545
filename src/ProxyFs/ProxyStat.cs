namespace VirtFs.ProxyFs;

/// <summary>ProxyStat (hw/9pfs/9p-proxy.h), wire format "qqqdddqqqqqqqqqq": what lstat(2) reports.</summary>
public readonly record struct ProxyStat(ulong Dev, ulong Ino, ulong Nlink, uint Mode, uint Uid, uint Gid, ulong Rdev,
    ulong Size, ulong Blksize, ulong Blocks, ulong AtimeSec, ulong AtimeNsec, ulong MtimeSec, ulong MtimeNsec,
    ulong CtimeSec, ulong CtimeNsec);

/// <summary>ProxyStatFS (hw/9pfs/9p-proxy.h), wire format "qqqqqqqqqqq": what statfs(2) reports.
/// Fsid0/Fsid1 are the two ints of f_fsid, each widened to 64 bits by the sender.</summary>
public readonly record struct ProxyStatFs(ulong Type, ulong Bsize, ulong Blocks, ulong Bfree, ulong Bavail,
    ulong Files, ulong Ffree, ulong Fsid0, ulong Fsid1, ulong Namelen, ulong Frsize);

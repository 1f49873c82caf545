using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

public sealed partial class P9Server
{
    // Tgetattr valid bits (include/net/9p/9p.h P9_STATS_*).
    private const ulong StatsBasic = 0x7ff, StatsBtime = 0x800, StatsGen = 0x1000;

    // Tsetattr valid bits (P9_ATTR_*).
    private const uint AttrMode = 0x1, AttrUid = 0x2, AttrGid = 0x4, AttrSize = 0x8, AttrAtime = 0x10,
        AttrMtime = 0x20, AttrCtime = 0x40, AttrAtimeSet = 0x80, AttrMtimeSet = 0x100;

    /// <summary>Tgetattr: fid[4] request_mask[8] -> valid[8] qid mode uid gid nlink rdev size blksize blocks
    /// atime mtime ctime btime gen data_version. We always return the basic set (what stat(2) has); btime
    /// when the host has it and the fid is open (statx on its fd; the proxy protocol's lstat has none); gen
    /// when asked for, the fid is open and the host filesystem keeps one (FS_IOC_GETVERSION, as QEMU, but
    /// without QEMU's extra open per request). Linux hosts have no data_version to give.</summary>
    private int Getattr(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        ulong requestMask = call.Body.ReadUInt64();
        call.Body.ReadEnd();
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        int result = StatFid(fid, out FileStat a);
        if (result < 0)
        {
            return result;
        }
        ulong generation = 0;
        bool hasGeneration = (requestMask & StatsGen) != 0 && (a.IsRegular || a.IsDirectory) &&
            ReadGeneration(fid, out generation);
        P9Writer reply = call.StartReply(P9MessageType.Rgetattr);
        reply.WriteUInt64(StatsBasic | (a.HasBirth ? StatsBtime : 0) | (hasGeneration ? StatsGen : 0));
        reply.WriteQid(_qids.ToQid(a));
        reply.WriteUInt32(a.Mode);
        reply.WriteUInt32(a.Uid);
        reply.WriteUInt32(a.Gid);
        reply.WriteUInt64(a.LinkCount);
        reply.WriteUInt64(a.RawDevice);
        reply.WriteUInt64(a.Size);
        reply.WriteUInt64(a.BlockSize);
        reply.WriteUInt64(a.Blocks);
        WriteTime(ref reply, a.Access);
        WriteTime(ref reply, a.Modify);
        WriteTime(ref reply, a.Change);
        WriteTime(ref reply, a.HasBirth ? a.Birth : default);
        reply.WriteUInt64(generation);
        reply.WriteUInt64(0); // data_version
        return reply.Finish();
    }

    private static void WriteTime(ref P9Writer reply, Timestamp time)
    {
        reply.WriteUInt64((ulong)time.Seconds);
        reply.WriteUInt64(time.Nanoseconds);
    }

    /// <summary>The inode generation of an open fid's file (ext2/3/4, btrfs, xfs keep one; tmpfs answers
    /// ENOTTY, and then the gen bit stays clear).</summary>
    private static unsafe bool ReadGeneration(Fid fid, out ulong generation)
    {
        const int FsIocGetVersion = unchecked((int)0x80087601); // _IOR('v', 1, long)
        generation = 0;
        SafeFileHandle? handle = fid.Handle;
        if (handle is null || fid.Kind is not (FidKind.OpenFile or FidKind.OpenDirectory))
        {
            return false;
        }
        int value = 0; // the kernel stores an int although the ioctl number says long
        using var use = new FdUse(handle);
        if (LibC.ioctl(use.Fd, FsIocGetVersion, &value) < 0)
        {
            return false;
        }
        generation = (uint)value;
        return true;
    }

    /// <summary>An open fid is stat'ed through its fd (it keeps working after unlink); others by path, or from
    /// the walk that just made them.</summary>
    private int StatFid(Fid fid, out FileStat attributes)
    {
        SafeFileHandle? handle = fid.Handle;
        if (handle is not null && (fid.Kind is FidKind.OpenFile or FidKind.OpenDirectory))
        {
            int result = StatHandle(handle, out attributes);
            return result < 0 ? result : _fs.MapOpenStat(handle, ref attributes);
        }
        if (TryWalkAttributes(fid, consume: true, out attributes))
        {
            return 0; // the first Tgetattr after the walk that made the fid (P9Server.WalkAttributes.cs)
        }
        return _fs.Lstat(fid.Path, out attributes);
    }

    /// <summary>
    /// Tsetattr: fid[4] valid[4] mode[4] uid[4] gid[4] size[8] atime_sec[8] atime_nsec[8] mtime_sec[8]
    /// mtime_nsec[8]. Applied in QEMU's order: mode, times, owner, size. A time bit without its _SET bit
    /// means "now". CTIME alone is a chown to (-1, -1), which only touches ctime.
    /// </summary>
    private int Setattr(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        uint valid = call.Body.ReadUInt32();
        uint mode = call.Body.ReadUInt32();
        uint uid = call.Body.ReadUInt32();
        uint gid = call.Body.ReadUInt32();
        ulong size = call.Body.ReadUInt64();
        ulong atimeSec = call.Body.ReadUInt64();
        ulong atimeNsec = call.Body.ReadUInt64();
        ulong mtimeSec = call.Body.ReadUInt64();
        ulong mtimeNsec = call.Body.ReadUInt64();
        call.Body.ReadEnd();
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        byte[] path = fid.Path;
        int result;
        // ftruncate(2) on an open file arrives as SIZE with MTIME and CTIME meaning "now" on the open fid.
        // Truncating through our own fd sets those times itself, and the path may be gone (unlinked or
        // renamed away: the file stays usable, POSIX), so the "now" times are not sent by path too.
        if ((valid & AttrSize) != 0 && CanTruncateThroughFd(fid))
        {
            valid &= ~(AttrCtime | ((valid & AttrMtimeSet) == 0 ? AttrMtime : 0));
        }
        if ((valid & AttrMode) != 0)
        {
            result = _fs.Chmod(path, mode & 0xFFF /* 07777 */);
            if (result < 0)
            {
                return result;
            }
        }
        if ((valid & (AttrAtime | AttrMtime)) != 0)
        {
            long aNsec = (valid & AttrAtime) == 0 ? LibC.UTIME_OMIT : (valid & AttrAtimeSet) == 0 ? LibC.UTIME_NOW : (long)atimeNsec;
            long mNsec = (valid & AttrMtime) == 0 ? LibC.UTIME_OMIT : (valid & AttrMtimeSet) == 0 ? LibC.UTIME_NOW : (long)mtimeNsec;
            if (!IsValidNanoseconds(aNsec) || !IsValidNanoseconds(mNsec))
            {
                return -Errno.EINVAL;
            }
            result = _fs.Utime(path, (long)atimeSec, aNsec, (long)mtimeSec, mNsec);
            if (result < 0)
            {
                return result;
            }
        }
        bool ctimeOnly = (valid & AttrCtime) != 0 && (valid & 0x1ff & ~AttrCtime) == 0;
        if ((valid & (AttrUid | AttrGid)) != 0 || ctimeOnly)
        {
            result = _fs.Chown(path, (valid & AttrUid) != 0 ? uid : uint.MaxValue,
                (valid & AttrGid) != 0 ? gid : uint.MaxValue);
            if (result < 0)
            {
                return result;
            }
        }
        if ((valid & AttrSize) != 0)
        {
            if (size > long.MaxValue)
            {
                return -Errno.EFBIG;
            }
            result = TruncateFid(fid, path, (long)size);
            if (result < 0)
            {
                return result;
            }
        }
        return call.Empty(P9MessageType.Rsetattr);
    }

    private static bool IsValidNanoseconds(long value) =>
        value is >= 0 and < 1_000_000_000 || value == LibC.UTIME_NOW || value == LibC.UTIME_OMIT;

    private static bool CanTruncateThroughFd(Fid fid) =>
        fid.Handle is not null && fid.Kind == FidKind.OpenFile && OpenFlags.CanWrite(fid.OpenFlags);

    /// <summary>ftruncate on our own writable fd needs no helper hop and works on an unlinked file.</summary>
    private int TruncateFid(Fid fid, byte[] path, long size)
    {
        SafeFileHandle? handle = fid.Handle;
        if (handle is not null && CanTruncateThroughFd(fid))
        {
            using var use = new FdUse(handle);
            return LibC.ftruncate(use.Fd, size) < 0 ? -LibC.errno : 0;
        }
        return _fs.Truncate(path, size);
    }

    /// <summary>Tstatfs: fid[4] -> type[4] bsize[4] blocks[8] bfree[8] bavail[8] files[8] ffree[8] fsid[8] namelen[4].</summary>
    private int Statfs(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        int result = _fs.Statfs(fid.Path, out FileSystemStats s);
        if (result < 0)
        {
            return result;
        }
        P9Writer reply = call.StartReply(P9MessageType.Rstatfs);
        reply.WriteUInt32(s.Type);
        reply.WriteUInt32(s.BlockSize);
        reply.WriteUInt64(s.Blocks);
        reply.WriteUInt64(s.FreeBlocks);
        reply.WriteUInt64(s.AvailableBlocks);
        reply.WriteUInt64(s.Files);
        reply.WriteUInt64(s.FreeFiles);
        reply.WriteUInt64(s.FileSystemId);
        reply.WriteUInt32(s.NameLength);
        return reply.Finish();
    }
}

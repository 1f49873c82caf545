using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.Virtio9p.Interop;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

public sealed partial class P9Server
{
    // P9_LOCK_TYPE_* match F_RDLCK/F_WRLCK/F_UNLCK; P9_LOCK_SUCCESS/BLOCKED/ERROR.
    private const byte LockRead = 0, LockWrite = 1, LockUnlock = 2;
    private const byte StatusSuccess = 0, StatusBlocked = 1, StatusError = 2;
    private const int MaxClientIdLength = 256;

    /// <summary>
    /// Tlock: fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client_id[s] -> status[1].
    /// Real byte-range locks on the host (QEMU answers SUCCESS without locking), as open-file-description
    /// locks on the fid's fd, so locks held by different fids, and by other users of the host file, conflict
    /// as they should. Never waits: a conflict answers BLOCKED and the Linux client polls (FACTS), so a
    /// blocking lock cannot stall other requests.
    /// </summary>
    private int Lock(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        byte type = call.Body.ReadByte();
        call.Body.ReadUInt32(); // flags: P9_LOCK_FLAGS_BLOCK only tells us the client will retry
        ulong start = call.Body.ReadUInt64();
        ulong length = call.Body.ReadUInt64();
        call.Body.ReadUInt32();
        call.Body.ReadString(MaxClientIdLength);
        call.Body.ReadEnd();
        if (type > LockUnlock || start > long.MaxValue || length > long.MaxValue)
        {
            return -Errno.EINVAL;
        }
        Fid? fid = GetFid(fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        byte status;
        lock (fid.Sync)
        {
            SafeFileHandle? handle = LockHandleFor(fid, type);
            if (handle is null)
            {
                return -Errno.EBADF;
            }
            var request = new flock { l_type = type, l_whence = 0, l_start = (long)start, l_len = (long)length };
            int errno = ApplyLock(handle, LibC.F_OFD_SETLK, ref request);
            status = errno switch
            {
                0 => StatusSuccess,
                Errno.EAGAIN or Errno.EACCES => StatusBlocked,
                _ => StatusError,
            };
        }
        P9Writer reply = call.StartReply(P9MessageType.Rlock);
        reply.WriteByte(status);
        return reply.Finish();
    }

    /// <summary>Tgetlock: fid[4] type[1] start[8] length[8] proc_id[4] client_id[s] -> the same fields
    /// describing a conflicting lock, or type UNLCK when the range is free.</summary>
    private int GetLock(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        byte type = call.Body.ReadByte();
        ulong start = call.Body.ReadUInt64();
        ulong length = call.Body.ReadUInt64();
        uint procId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> clientId = call.Body.ReadString(MaxClientIdLength);
        call.Body.ReadEnd();
        if (type > LockUnlock || start > long.MaxValue || length > long.MaxValue)
        {
            return -Errno.EINVAL;
        }
        Fid? fid = GetFid(fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        var query = new flock { l_type = type, l_whence = 0, l_start = (long)start, l_len = (long)length };
        lock (fid.Sync)
        {
            SafeFileHandle? handle = fid.LockHandle ?? fid.Handle;
            if (handle is null)
            {
                return -Errno.EBADF;
            }
            int errno = ApplyLock(handle, LibC.F_OFD_GETLK, ref query);
            if (errno != 0)
            {
                return -errno;
            }
        }
        P9Writer reply = call.StartReply(P9MessageType.Rgetlock);
        reply.WriteByte((byte)query.l_type);
        reply.WriteUInt64((ulong)(long)query.l_start);
        reply.WriteUInt64((ulong)(long)query.l_len);
        // An OFD lock has no owning process (l_pid is -1); a conflict reports the asker's ids, a free
        // range echoes them as QEMU does.
        reply.WriteUInt32(procId);
        reply.WriteString(clientId);
        return reply.Finish();
    }

    /// <summary>
    /// The fd a fid locks through. flock(1) opens read-only yet asks for an exclusive lock, which
    /// F_OFD_SETLK refuses (EBADF) on a read-only fd; so a fid whose fd is not writable gets a second,
    /// read-write fd from the helper at its first lock, and every lock of that fid goes through it.
    /// </summary>
    private SafeFileHandle? LockHandleFor(Fid fid, byte type)
    {
        if (fid.LockHandle is not null)
        {
            return fid.LockHandle;
        }
        if (fid.Handle is null || fid.Kind != FidKind.OpenFile)
        {
            return null;
        }
        if (type == LockWrite && !OpenFlags.CanWrite(fid.OpenFlags) &&
            _fs.Open(fid.Path, OpenFlags.ORdWr | OpenFlags.ONofollow, out SafeFileHandle? lockHandle) >= 0)
        {
            fid.LockHandle = lockHandle;
            return lockHandle;
        }
        return fid.Handle;
    }

    private static unsafe int ApplyLock(SafeFileHandle handle, int command, ref flock request)
    {
        using var use = new FdUse(handle);
        fixed (flock* p = &request)
        {
            return LibC.fcntl(use.Fd, command, p) < 0 ? LibC.errno : 0;
        }
    }
}

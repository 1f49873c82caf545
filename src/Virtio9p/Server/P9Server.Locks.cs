using Microsoft.Win32.SafeHandles;
using System.Text;
using Tmds.Linux;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

public sealed partial class P9Server
{
    // P9_LOCK_TYPE_* match F_RDLCK/F_WRLCK/F_UNLCK; P9_LOCK_SUCCESS/BLOCKED/ERROR.
    private const byte LockRead = 0, LockWrite = 1, LockUnlock = 2;
    private const byte StatusSuccess = 0, StatusBlocked = 1, StatusError = 2;

    /// <summary>P9_LOCK_FLAGS_BLOCK (include/net/9p/9p.h).</summary>
    private const uint LockFlagBlock = 1;

    /// <summary>Pauses between the tries of a blocking Tlock that conflicts (see <see cref="Lock"/>): 310 ms in all.</summary>
    private static readonly int[] BlockedRetryDelaysMs = [5, 10, 15, 40, 80, 160];
    private const int MaxClientIdLength = 256;

    /// <summary>
    /// Tlock: fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client_id[s] -> status[1].
    /// Real byte-range locks on the host (QEMU answers SUCCESS without locking), taken through the fd of the
    /// lock owner (<see cref="LockOwners"/>), so guest processes conflict with each other and with host
    /// users of the file but never with themselves. Never parks: a conflict answers BLOCKED (a blocking request after a
    /// few short tries, below) and the Linux client, for F_SETLKW, sends the request again until it is granted, so a
    /// blocking lock cannot stall other requests.
    /// </summary>
    private int Lock(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        byte type = call.Body.ReadByte();
        uint flags = call.Body.ReadUInt32(); // P9_LOCK_FLAGS_BLOCK: an F_SETLKW the client retries
        ulong start = call.Body.ReadUInt64();
        ulong length = call.Body.ReadUInt64();
        uint procId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> clientId = call.Body.ReadString(MaxClientIdLength);
        call.Body.ReadEnd();
        if (type > LockUnlock || start > long.MaxValue || length > long.MaxValue)
        {
            return -Errno.EINVAL;
        }
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        // A blocking lock that conflicts is tried again a few times, briefly, before BLOCKED. Why: when a guest process
        // releases a lock, the Linux client wakes the guest's local waiter before its own unlock Tlock has reached us,
        // so the waiter's Tlock can arrive first; on BLOCKED the client sleeps its lock timeout (30 s by default)
        // before asking again, and F_SETLKW would take 30 s after a release. Bounded (about 0.3 s), never on the
        // queue thread (Tlock is not IsNonBlocking), and never holding fid.Sync while it sleeps.
        bool blocking = (flags & LockFlagBlock) != 0;
        byte status;
        for (int attempt = 0; ; attempt++)
        {
            lock (fid.Sync)
            {
                int found = OwnerKey(fid, procId, clientId, out LockOwnerKey key);
                if (found < 0)
                {
                    return found;
                }
                bool full = false;
                // An unlock finds the owner without referencing it from this fid (an owner that never locked holds
                // nothing: no fd to open for it), so it borrows the fd; a lock references the owner through the fid,
                // which this request holds.
                SafeFileHandle? handle = type == LockUnlock
                    ? _lockOwners.FindAndAddRef(key)
                    : _lockOwners.Acquire(fid, key, () => OpenOwnerHandle(fid), out full);
                if (handle is null && type != LockUnlock)
                {
                    return full ? -Errno.ENOLCK : -Errno.EBADF;
                }
                int errno = 0;
                if (handle is not null)
                {
                    var request = new flock { l_type = type, l_whence = 0, l_start = (long)start, l_len = (long)length };
                    try
                    {
                        errno = ApplyLock(handle, LibC.F_OFD_SETLK, ref request);
                    }
                    finally
                    {
                        if (type == LockUnlock)
                        {
                            handle.DangerousRelease();
                        }
                    }
                }
                status = errno switch
                {
                    0 => StatusSuccess,
                    Errno.EAGAIN or Errno.EACCES => StatusBlocked,
                    _ => StatusError,
                };
            }
            if (status != StatusBlocked || !blocking || attempt == BlockedRetryDelaysMs.Length)
            {
                break;
            }
            Thread.Sleep(BlockedRetryDelaysMs[attempt]);
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
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        var query = new flock { l_type = type, l_whence = 0, l_start = (long)start, l_len = (long)length };
        lock (fid.Sync)
        {
            int found = OwnerKey(fid, procId, clientId, out LockOwnerKey key);
            if (found < 0)
            {
                return found;
            }
            // Asked through the owner's own description, the owner's locks do not count as conflicts
            // (F_GETLK ignores the caller's locks); an owner without one holds no lock here.
            SafeFileHandle? owner = _lockOwners.FindAndAddRef(key);
            int errno;
            try
            {
                errno = ApplyLock(owner ?? fid.Handle!, LibC.F_OFD_GETLK, ref query);
            }
            finally
            {
                owner?.DangerousRelease();
            }
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

    /// <summary>The lock owner a request names, on the file the fid has open. Locks need an open fid (the
    /// Linux client locks only open files); its identity is read once.</summary>
    private static int OwnerKey(Fid fid, uint procId, ReadOnlySpan<byte> clientId, out LockOwnerKey key)
    {
        key = default;
        if (fid.Handle is null || (fid.Kind != FidKind.OpenFile && fid.Kind != FidKind.OpenDirectory))
        {
            return -Errno.EBADF;
        }
        if (fid.FileIdentity is null)
        {
            int stat = StatHandle(fid.Handle, out FileStat attributes);
            if (stat < 0)
            {
                return stat;
            }
            fid.FileIdentity = (attributes.Device, attributes.Inode);
        }
        (ulong device, ulong inode) = fid.FileIdentity.Value;
        key = new LockOwnerKey(device, inode, procId, Encoding.Latin1.GetString(clientId));
        return 0;
    }

    /// <summary>
    /// A new open file description for a lock owner: the file reopened read-write through the helper, so
    /// both read and write locks work whatever the fid's own mode (flock(1) opens O_RDONLY yet asks for an
    /// exclusive lock, which F_OFD_SETLK refuses on a read-only fd). When the path no longer leads to the
    /// same file (unlinked, replaced) or cannot be opened read-write (a directory, a running executable,
    /// a read-only mount), a duplicate of the fid's fd serves instead, with that fd's access mode.
    /// </summary>
    private SafeFileHandle? OpenOwnerHandle(Fid fid)
    {
        if (fid.Kind == FidKind.OpenFile &&
            _fs.Open(fid.Path, OpenFlags.ORdWr | OpenFlags.ONofollow, out SafeFileHandle? reopened) >= 0 &&
            reopened is not null)
        {
            if (StatHandle(reopened, out FileStat attributes) == 0 &&
                fid.FileIdentity == (attributes.Device, attributes.Inode))
            {
                return reopened;
            }
            reopened.Dispose();
        }
        using var use = new FdUse(fid.Handle!);
        int duplicate = LibC.fcntl(use.Fd, LibC.F_DUPFD_CLOEXEC, 0);
        return duplicate < 0 ? null : new SafeFileHandle(duplicate, ownsHandle: true);
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

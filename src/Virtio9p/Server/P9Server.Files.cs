using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

public sealed partial class P9Server
{
    /// <summary>Tlopen: fid[4] flags[4] -> qid iounit[4]. The helper opens the file and hands us the fd;
    /// from then on data moves between guest memory and that fd without the helper.</summary>
    private int Lopen(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        uint flags = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        lock (fid.Sync)
        {
            if (fid.Kind != FidKind.Path)
            {
                return -Errno.EINVAL; // already open, or an xattr fid
            }
            int hostFlags = OpenFlags.ToHost(flags);
            int result = ReserveOpenFile(ref call);
            if (result < 0)
            {
                return result;
            }
            result = _fs.Open(fid.Path, hostFlags, out SafeFileHandle? handle);
            if (result < 0)
            {
                _budget.ReleaseOpenFile();
                return result;
            }
            return Opened(ref call, fid, handle!, hostFlags, P9MessageType.Rlopen);
        }
    }

    /// <summary>Tlcreate: fid[4] name[s] flags[4] mode[4] gid[4] -> qid iounit[4]. Creates name in the
    /// directory fid names, as the fid's user; the fid then names the new, open file.</summary>
    private int Lcreate(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
        uint flags = call.Body.ReadUInt32();
        uint mode = call.Body.ReadUInt32();
        uint gid = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        int check = CheckNewName(name);
        if (check < 0)
        {
            return check;
        }
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        lock (fid.Sync)
        {
            if (fid.Kind != FidKind.Path)
            {
                return -Errno.EINVAL;
            }
            byte[] path = PathNames.Join(fid.Path, name);
            int hostFlags = OpenFlags.ToHost(flags) | OpenFlags.OCreat;
            int result = ReserveOpenFile(ref call);
            if (result < 0)
            {
                return result;
            }
            result = _fs.Create(path, hostFlags, mode & 0xFFF /* 07777 */, fid.Uid, gid, out SafeFileHandle? handle);
            if (result < 0)
            {
                _budget.ReleaseOpenFile();
                return result;
            }
            fid.Path = path;
            return Opened(ref call, fid, handle!, hostFlags, P9MessageType.Rlcreate);
        }
    }

    /// <summary>The fid takes the file just opened (whose open-file slot the caller reserved) and the reply
    /// its qid.</summary>
    private int Opened(ref Call call, Fid fid, SafeFileHandle handle, int hostFlags, P9MessageType replyType)
    {
        int result = StatHandle(handle, out FileStat attributes);
        if (result < 0)
        {
            handle.Dispose();
            _budget.ReleaseOpenFile();
            return result;
        }
        fid.HoldOpenFile(handle);
        fid.OpenFlags = hostFlags;
        fid.Kind = attributes.IsDirectory ? FidKind.OpenDirectory : FidKind.OpenFile;
        fid.DirectoryOffset = 0;
        P9Writer reply = call.StartReply(replyType);
        reply.WriteQid(_qids.ToQid(attributes));
        reply.WriteUInt32(P9Limits.IoUnit(_msize)); // whole pages per Tread/Twrite, as QEMU
        return reply.Finish();
    }

    /// <summary>Tread: fid[4] offset[8] count[4] -> count[4] data. preadv lands file data straight in the
    /// guest's reply buffers; only the 11-byte header is written separately.</summary>
    private unsafe int Read(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        ulong offset = call.Body.ReadUInt64();
        uint count = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        int room = Math.Min(call.Exchange.ReplyCapacity, _msize) - P9Limits.ReadReplyHeaderSize;
        if (room < 0)
        {
            return -Errno.EMSGSIZE;
        }
        int wanted = (int)Math.Min(count, (uint)room);
        if (offset > long.MaxValue)
        {
            return -Errno.EINVAL;
        }

        int got;
        if (fid.Kind == FidKind.XattrRead)
        {
            byte[] value = fid.Xattr!.Value;
            int start = (int)Math.Min(offset, (ulong)value.Length);
            got = Math.Min(wanted, value.Length - start);
            call.Exchange.CopyToReply(P9Limits.ReadReplyHeaderSize, value.AsSpan(start, got));
        }
        else
        {
            SafeFileHandle? handle = fid.Handle;
            if (fid.Kind != FidKind.OpenFile || handle is null)
            {
                return fid.Kind == FidKind.OpenDirectory ? -Errno.EISDIR : -Errno.EBADF;
            }
            got = 0;
            if (wanted > 0)
            {
                if (!call.Exchange.TryBeginDirectAccess())
                {
                    return -Errno.EIO; // the transport took the buffers back (front-end gone): no reply is read
                }
                try
                {
                    int iovecCount = call.Exchange.GetReplyIovecs(P9Limits.ReadReplyHeaderSize, wanted, call.Buffers.Iovecs);
                    if (iovecCount < 0)
                    {
                        return -Errno.ENOBUFS;
                    }
                    fixed (iovec* iov = call.Buffers.Iovecs)
                    {
                        // SAFETY: the iovecs point into guest memory the transport keeps mapped while direct
                        // access is open, and cover exactly `wanted` writable bytes.
                        nint n = Sys.Preadv2(handle, iov, iovecCount, (long)offset,
                            call.Buffers.MustNotBlock ? Sys.RWF_NOWAIT : 0);
                        if (n < 0)
                        {
                            int error = LastErrno();
                            if (call.Buffers.MustNotBlock && error is Errno.EAGAIN or Errno.EOPNOTSUPP)
                            {
                                // Not in the page cache, or at the page where the kernel would start the next
                                // readahead (RWF_NOWAIT starts no I/O), or a filesystem that cannot say: waiting for
                                // the disk here would stall every request behind this one. A worker reads it.
                                fid.ReadsMayBlock |= error == Errno.EOPNOTSUPP;
                                return NotServedHere;
                            }
                            return -error;
                        }
                        got = (int)n;
                    }
                }
                finally
                {
                    call.Exchange.EndDirectAccess();
                }
                if (call.Buffers.MustNotBlock && got > 0 && got < wanted &&
                    !(StatHandle(handle, out FileStat now) == 0 && now.Size <= offset + (ulong)got))
                {
                    // Part of the range was cached and the file goes on (or cannot be stat'ed): the rest needs the
                    // disk, and a short Rread mid-file would be taken for the end of the file. A worker reads the
                    // whole range again.
                    return NotServedHere;
                }
            }
        }

        Span<byte> header = stackalloc byte[P9Limits.ReadReplyHeaderSize];
        P9Writer reply = new(header, P9MessageType.Rread, call.Tag);
        reply.WriteUInt32((uint)got);
        int headerLength = reply.Finish();
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)(headerLength + got));
        call.Exchange.CopyToReply(0, header);
        call.ReplyInExchange = true;
        _metrics?.Read(got);
        return headerLength + got;
    }

    /// <summary>Twrite: fid[4] offset[8] count[4] data[count]. pwritev takes the data straight from the
    /// guest's request buffers. The body reader holds only the fixed fields.</summary>
    private unsafe int Write(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        ulong offset = call.Body.ReadUInt64();
        uint count = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        if (count != (uint)(call.Exchange.RequestLength - P9Limits.WriteRequestHeaderSize) || offset > long.MaxValue)
        {
            return -Errno.EINVAL; // the data must be exactly what the message carries
        }
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }

        int written;
        if (fid.Kind == FidKind.XattrWrite)
        {
            lock (fid.Sync)
            {
                XattrState state = fid.Xattr!;
                if (offset + count > (ulong)state.Value.Length)
                {
                    return -Errno.ENOSPC; // more than Txattrcreate announced
                }
                written = call.Exchange.CopyFromRequest(P9Limits.WriteRequestHeaderSize,
                    state.Value.AsSpan((int)offset, (int)count));
                state.Written = Math.Max(state.Written, (int)offset + written);
            }
        }
        else
        {
            SafeFileHandle? handle = fid.Handle;
            if (fid.Kind != FidKind.OpenFile || handle is null)
            {
                return fid.Kind == FidKind.OpenDirectory ? -Errno.EISDIR : -Errno.EBADF;
            }
            written = 0;
            if (count > 0)
            {
                if (!call.Exchange.TryBeginDirectAccess())
                {
                    return -Errno.EIO; // front-end gone: its buffers may hold anything by now, write nothing
                }
                try
                {
                    int iovecCount = call.Exchange.GetRequestIovecs(P9Limits.WriteRequestHeaderSize, (int)count, call.Buffers.Iovecs);
                    if (iovecCount < 0)
                    {
                        return -Errno.ENOBUFS;
                    }
                    fixed (iovec* iov = call.Buffers.Iovecs)
                    {
                        // SAFETY: the iovecs cover exactly `count` readable bytes of guest memory, kept mapped
                        // while direct access is open.
                        nint n = Sys.Pwritev(handle, iov, iovecCount, (long)offset);
                        if (n < 0)
                        {
                            return -LastErrno();
                        }
                        written = (int)n;
                    }
                }
                finally
                {
                    call.Exchange.EndDirectAccess();
                }
            }
        }
        _metrics?.Written(written);
        P9Writer reply = call.StartReply(P9MessageType.Rwrite);
        reply.WriteUInt32((uint)written);
        return reply.Finish();
    }

    /// <summary>Tfsync: fid[4] datasync[4].</summary>
    private int Fsync(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        uint dataSync = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        SafeFileHandle? handle = GetFid(ref call, fidId)?.Handle;
        if (handle is null)
        {
            return -Errno.EBADF;
        }
        using (var use = new FdUse(handle))
        {
            int rc = dataSync != 0 ? LibC.fdatasync(use.Fd) : LibC.fsync(use.Fd);
            if (rc < 0)
            {
                return -LibC.errno;
            }
        }
        return call.Empty(P9MessageType.Rfsync);
    }

    /// <summary>statx on an open fd: works after the file was unlinked or renamed, needs no helper round
    /// trip, and reports btime where the host filesystem keeps it.</summary>
    private static unsafe int StatHandle(SafeFileHandle handle, out FileStat attributes)
    {
        const int AtEmptyPath = 0x1000;
        const uint StatxBasicAndBtime = 0x7ff | 0x800;
        statx buffer;
        byte empty = 0;
        using var use = new FdUse(handle);
        if (LibC.statx(use.Fd, &empty, AtEmptyPath, StatxBasicAndBtime, &buffer) < 0)
        {
            attributes = default;
            return -LibC.errno;
        }
        attributes = FileStat.FromStatx(buffer);
        return 0;
    }

    private static int LastErrno() => System.Runtime.InteropServices.Marshal.GetLastPInvokeError();

    /// <summary>Names for new entries: QEMU's rule that "." and ".." already exist.</summary>
    private static int CheckNewName(ReadOnlySpan<byte> name)
    {
        int check = PathNames.Check(name);
        if (check < 0)
        {
            return check;
        }
        return PathNames.IsDot(name) || PathNames.IsDotDot(name) ? -Errno.EEXIST : 0;
    }
}

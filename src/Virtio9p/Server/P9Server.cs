using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using VirtFs.VhostUser.Diagnostics;
using VirtFs.Virtio9p.Diagnostics;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

/// <summary>
/// The 9P2000.L server: decodes one request, runs its handler against the <see cref="IFileSystem"/> port
/// and writes the reply. Stateless per call apart from the session (msize, fids, qid map), so any number
/// of workers may call <see cref="Serve"/> at once. Handlers return the reply length, or a negative errno
/// that this one place turns into Rlerror (QEMU's pdu_complete pattern).
/// </summary>
public sealed partial class P9Server
{
    private readonly IFileSystem _fs;
    private readonly ILogger _logger;
    private readonly SessionBudget _budget;
    private readonly FidTable _fids;
    private readonly PathLock _pathLock = new();
    private readonly QidMapper _qids;
    private readonly LockOwners _lockOwners = new();
    private readonly int _maxMessageSize;
    private readonly BackendMetrics? _metrics;
    /// <summary>--readonly: every request that would change the export is answered EROFS before it runs.</summary>
    private readonly bool _readOnly;
    private volatile int _msize;

    // Every line below is the guest's to trigger, as often as it sends requests: each kind is rate-limited.
    private readonly LogRateLimiter _shortLog = new("9P requests shorter than a header");
    private readonly LogRateLimiter _framingLog = new("9P requests with a wrong size field");
    private readonly LogRateLimiter _malformedLog = new("9P malformed requests");
    private readonly LogRateLimiter _overflowLog = new("9P replies larger than the guest's buffer");
    private readonly LogRateLimiter _sessionLog = new("9P sessions");
    private readonly LogRateLimiter _budgetLog = new("9P requests refused by the session budget");

    public P9Server(IFileSystem fileSystem, ILogger logger, int maxMessageSize = P9Limits.MaxMessageSize,
        BackendMetrics? metrics = null, bool readOnly = false, SessionLimits? limits = null)
    {
        if (maxMessageSize < P9Limits.MinMessageSize || maxMessageSize > P9Limits.MaxMessageSize)
        {
            throw new ArgumentOutOfRangeException(nameof(maxMessageSize));
        }
        _fs = fileSystem;
        _logger = logger;
        _maxMessageSize = maxMessageSize;
        _msize = maxMessageSize;
        _metrics = metrics;
        _readOnly = readOnly;
        _budget = new SessionBudget(limits ?? new SessionLimits());
        _fids = new FidTable(_budget);
        _qids = new QidMapper(_budget.Limits.MaxQidOverflowEntries);
    }

    /// <summary>The negotiated msize (the largest message either side sends).</summary>
    public int MessageSize => _msize;

    internal int FidCount => _fids.Count;

    /// <summary>The object behind a fid number, for tests of its reuse (no reference taken).</summary>
    internal object? FidObject(uint id) => _fids.Peek(id);

    internal int LockOwnerCount => _lockOwners.Count;

    internal SessionBudget Budget => _budget;

    internal int QidOverflowCount => _qids.OverflowCount;

    /// <summary>What <see cref="Serve"/> returns when buffers that must not block (the queue thread's) met a request
    /// that would wait on the disk: nothing was answered or changed, and the request is to be served again by a
    /// thread that may block.</summary>
    public const int NotServedHere = int.MinValue;

    /// <summary>Serves one exchange. Returns the number of reply bytes written into the exchange (0 when
    /// the request was too broken to answer at all), or <see cref="NotServedHere"/>, and the request's tag.</summary>
    public int Serve(IP9Exchange exchange, WorkerBuffers buffers, out ushort tag)
    {
        tag = P9Limits.NoTag;
        int length = exchange.RequestLength;
        Span<byte> header = buffers.Request.AsSpan(0, P9Limits.HeaderSize);
        if (length < P9Limits.HeaderSize || exchange.CopyFromRequest(0, header) != P9Limits.HeaderSize)
        {
            if (_shortLog.ShouldLog(_logger, LogLevel.Warning))
            {
                _logger.LogWarning("9P request of {Length} bytes is shorter than a header; dropped", length);
            }
            return 0;
        }
        var headerReader = new P9Reader(header);
        uint size = headerReader.ReadUInt32();
        var type = (P9MessageType)headerReader.ReadByte();
        tag = headerReader.ReadUInt16();

        // The Linux transport sends exactly `size` bytes (trans_virtio.c adds zero-copy write data to the
        // size field), so any mismatch is a framing lie; answer it without reading further.
        if (size != (uint)length || length > _msize)
        {
            if (_framingLog.ShouldLog(_logger, LogLevel.Warning))
            {
                _logger.LogWarning("9P {Type} tag {Tag}: size field {Size} but {Length} bytes sent (msize {Msize})",
                    type, tag, size, length, _msize);
            }
            return WriteError(exchange, buffers, tag, Errno.EINVAL);
        }

        int replyCapacity = Math.Min(exchange.ReplyCapacity, _msize);
        var call = new Call(exchange, buffers, type, tag, buffers.Reply.AsSpan(0, replyCapacity));
        int result;
        try
        {
            if (_readOnly && Modifies(type, exchange, buffers))
            {
                result = -Errno.EROFS;
            }
            // Below, a copy comes back short only when the front-end went away since the header was read (the
            // transport's access gate closed): the buffer still holds the previous request, which must not be
            // served again, so the request is dropped.
            else if (type == P9MessageType.Twrite)
            {
                // Only the fixed header is copied: the data stays in guest memory for pwritev.
                int fixedLength = Math.Min(length, P9Limits.WriteRequestHeaderSize);
                if (exchange.CopyFromRequest(0, buffers.Request.AsSpan(0, fixedLength)) != fixedLength)
                {
                    return 0;
                }
                call.Body = new P9Reader(buffers.Request.AsSpan(P9Limits.HeaderSize, fixedLength - P9Limits.HeaderSize));
                result = Write(ref call);
            }
            else
            {
                if (exchange.CopyFromRequest(0, buffers.Request.AsSpan(0, length)) != length)
                {
                    return 0;
                }
                call.Body = new P9Reader(buffers.Request.AsSpan(P9Limits.HeaderSize, length - P9Limits.HeaderSize));
                PathLock.Use pathUse = PathLock.For(type);
                _pathLock.Enter(pathUse);
                try
                {
                    result = Dispatch(type, ref call);
                }
                finally
                {
                    _pathLock.Exit(pathUse);
                }
            }
        }
        catch (QidSpaceExhaustedException)
        {
            result = Refused(type, tag, Errno.ENFILE, "qid numbers for inodes beyond 2^48 or devices beyond 32768",
                _budget.Limits.MaxQidOverflowEntries);
        }
        catch (P9ProtocolException e)
        {
            if (_malformedLog.ShouldLog(_logger, LogLevel.Warning))
            {
                _logger.LogWarning("9P {Type} tag {Tag}: malformed: {Reason}", type, tag, e.Message);
            }
            result = -Errno.EINVAL;
        }
        catch (P9ReplyOverflowException)
        {
            // The guest left less reply room than this reply needs.
            if (_overflowLog.ShouldLog(_logger, LogLevel.Warning))
            {
                _logger.LogWarning("9P {Type} tag {Tag}: reply does not fit {Capacity} bytes", type, tag, replyCapacity);
            }
            result = -Errno.EMSGSIZE;
        }
        finally
        {
            call.PutFids();
            if (ChangesFiles(type))
            {
                CountChange();
            }
        }

        if (result == NotServedHere)
        {
            return NotServedHere; // nothing was written to the reply; the caller hands the request to a worker
        }
        if (result < 0)
        {
            _metrics?.Error(-result);
            return WriteError(exchange, buffers, tag, -result);
        }
        if (call.ReplyInExchange)
        {
            return result;
        }
        return exchange.CopyToReply(0, buffers.Reply.AsSpan(0, result)) == result ? result : 0;
    }

    /// <summary>
    /// Whether a request of <paramref name="type"/> on fid <paramref name="fidId"/> finishes without waiting on
    /// the helper or on anything the guest controls, so the queue thread may serve it itself (virtiofsd's
    /// default; each thread hop costs a wake-up): data I/O and getattr on an open fid (one preadv, pwritev or
    /// statx on the fd the helper gave us; the helper refuses to open special files, so it is a regular file or
    /// directory), the first getattr on a path fid right after its walk (answered from the walk's attributes,
    /// see P9Server.WalkAttributes.cs), xattr buffer reads and writes, a clunk that commits no xattr, and a Twalk of
    /// no names to another fid (a clone: a new fid from the table, no lookup; the client sends one before every
    /// open and create). Everything else (helper round trips, fsync, directory reads, locks) goes to the workers.
    /// A fid that changes kind after this look is still served correctly, only on this thread.
    /// </summary>
    /// <param name="fields">The request's bytes after its 7-byte header, as far as they were peeked: fid[4] first;
    /// for Twalk newfid[4] nwname[2] follow.</param>
    public bool IsNonBlocking(P9MessageType type, ReadOnlySpan<byte> fields)
    {
        if (fields.Length < 4)
        {
            return false;
        }
        uint fidId = BinaryPrimitives.ReadUInt32LittleEndian(fields);
        if (type == P9MessageType.Twalk)
        {
            // Not a walk in place (newfid == fid takes fid.Sync, which an open on that fid may hold across a helper
            // round trip), and not one that names anything (each name is an lstat on the host, through the helper
            // in helper mode).
            return fields.Length >= 10 &&
                BinaryPrimitives.ReadUInt16LittleEndian(fields[8..]) == 0 &&
                BinaryPrimitives.ReadUInt32LittleEndian(fields[4..]) != fidId &&
                !_pathLock.RenamePending;
        }
        return IsNonBlocking(type, fidId);
    }

    /// <summary><see cref="IsNonBlocking(P9MessageType, ReadOnlySpan{byte})"/> for every type but Twalk.</summary>
    public bool IsNonBlocking(P9MessageType type, uint fidId)
    {
        if (type is not (P9MessageType.Tread or P9MessageType.Twrite or P9MessageType.Tgetattr or P9MessageType.Tclunk))
        {
            return false;
        }
        if (PathLock.For(type) != PathLock.Use.None && _pathLock.RenamePending)
        {
            return false; // it would wait for the rename: a worker waits instead of the ring
        }
        Fid? fid = _fids.Peek(fidId);
        if (fid is null)
        {
            return type != P9MessageType.Tgetattr; // an unknown fid is an immediate ENOENT
        }
        FidKind kind = fid.Kind;
        return type switch
        {
            // A Tread that finds its data out of the page cache comes back (NotServedHere) and goes to a worker.
            P9MessageType.Tread => kind is FidKind.XattrRead || (kind == FidKind.OpenFile && !fid.ReadsMayBlock),
            // Not on a file opened O_SYNC/O_DSYNC: each write waits for the disk, and the ring would wait with it.
            P9MessageType.Twrite => kind is FidKind.XattrWrite ||
                (kind == FidKind.OpenFile && (fid.OpenFlags & OpenFlags.ODsync) == 0),
            // A path fid only right after its walk, answered from the walk's attributes (no helper).
            P9MessageType.Tgetattr => kind is FidKind.OpenFile or FidKind.OpenDirectory ||
                (kind == FidKind.Path && TryWalkAttributes(fid, consume: false, out _)),
            _ => kind != FidKind.XattrWrite,
        };
    }

    private int Dispatch(P9MessageType type, ref Call call) => type switch
    {
        P9MessageType.Tversion => Version(ref call),
        P9MessageType.Tattach => Attach(ref call),
        P9MessageType.Tflush => Flush(ref call),
        P9MessageType.Twalk => Walk(ref call),
        P9MessageType.Tclunk => Clunk(ref call),
        P9MessageType.Tremove => Remove(ref call),
        P9MessageType.Tlopen => Lopen(ref call),
        P9MessageType.Tlcreate => Lcreate(ref call),
        P9MessageType.Tread => Read(ref call),
        P9MessageType.Tfsync => Fsync(ref call),
        P9MessageType.Tgetattr => Getattr(ref call),
        P9MessageType.Tsetattr => Setattr(ref call),
        P9MessageType.Tstatfs => Statfs(ref call),
        P9MessageType.Treaddir => Readdir(ref call),
        P9MessageType.Tmkdir => Mkdir(ref call),
        P9MessageType.Tmknod => Mknod(ref call),
        P9MessageType.Tsymlink => Symlink(ref call),
        P9MessageType.Treadlink => Readlink(ref call),
        P9MessageType.Tlink => Link(ref call),
        P9MessageType.Trename => Rename(ref call),
        P9MessageType.Trenameat => Renameat(ref call),
        P9MessageType.Tunlinkat => Unlinkat(ref call),
        P9MessageType.Txattrwalk => XattrWalk(ref call),
        P9MessageType.Txattrcreate => XattrCreate(ref call),
        P9MessageType.Tlock => Lock(ref call),
        P9MessageType.Tgetlock => GetLock(ref call),
        // Tauth: 9P2000.L over virtio has no authentication; legacy 9P2000/9P2000.u messages are not
        // part of the dialect we negotiate. QEMU answers these the same way.
        _ => -Errno.EOPNOTSUPP,
    };

    /// <summary>Whether a request would change the export (for --readonly, as QEMU's readonly=on and virtiofsd's
    /// --readonly): every creating, removing, renaming, linking, attribute- or data-changing request, and Tlopen
    /// asking for write access or truncation (the open itself changes nothing, but its fid would).</summary>
    private static bool Modifies(P9MessageType type, IP9Exchange exchange, WorkerBuffers buffers)
    {
        switch (type)
        {
            case P9MessageType.Twrite:
            case P9MessageType.Tlcreate:
            case P9MessageType.Tsetattr:
            case P9MessageType.Tmkdir:
            case P9MessageType.Tmknod:
            case P9MessageType.Tsymlink:
            case P9MessageType.Tlink:
            case P9MessageType.Trename:
            case P9MessageType.Trenameat:
            case P9MessageType.Tunlinkat:
            case P9MessageType.Tremove:
            case P9MessageType.Txattrcreate:
                return true;
            case P9MessageType.Tlopen:
                // Tlopen: header, fid[4], flags[4] (Linux open flags: O_WRONLY 1, O_RDWR 2, O_TRUNC 0x200).
                Span<byte> flags = buffers.Request.AsSpan(0, 4);
                if (exchange.CopyFromRequest(P9Limits.HeaderSize + 4, flags) != 4)
                {
                    return false; // too short: the handler answers EINVAL
                }
                uint f = BinaryPrimitives.ReadUInt32LittleEndian(flags);
                return (f & 3) != 0 || (f & 0x200) != 0;
            default:
                return false;
        }
    }

    /// <summary>A request past one of the session's limits: the errno for Rlerror, and a rate-limited line
    /// naming the limit (the guest can hit it in a loop).</summary>
    private int Refused(P9MessageType type, ushort tag, int errno, string what, long limit)
    {
        if (_budgetLog.ShouldLog(_logger, LogLevel.Warning))
        {
            _logger.LogWarning("9P {Type} tag {Tag}: session budget for {What} ({Limit}) used up; answered errno {Errno}",
                type, tag, what, limit, errno);
        }
        return -errno;
    }

    /// <summary>Adds a new fid to the table, saying in the log when the session budget refused it.</summary>
    private int AddFid(ref Call call, Fid fid)
    {
        int result = _fids.Add(fid);
        return result switch
        {
            -Errno.EMFILE => Refused(call.Type, call.Tag, Errno.EMFILE, "fids", _budget.Limits.MaxFids),
            -Errno.ENOMEM => Refused(call.Type, call.Tag, Errno.ENOMEM, "fid path bytes", _budget.Limits.MaxPathBytes),
            _ => result,
        };
    }

    /// <summary>Takes a slot for one more open host file, or answers why not.</summary>
    private int ReserveOpenFile(ref Call call) =>
        _budget.TryOpenFile() ? 0 : Refused(call.Type, call.Tag, Errno.EMFILE, "open files", _budget.Limits.MaxOpenFiles);

    /// <summary>Reserves bytes for an xattr value a fid will hold, or answers why not.</summary>
    private int ReserveXattr(ref Call call, long bytes) =>
        _budget.TryReserveXattr(bytes) ? 0 : Refused(call.Type, call.Tag, Errno.ENOMEM, "xattr bytes", _budget.Limits.MaxXattrBytes);

    private static int WriteError(IP9Exchange exchange, WorkerBuffers buffers, ushort tag, int errno)
    {
        var writer = new P9Writer(buffers.Reply, P9MessageType.Rlerror, tag);
        writer.WriteUInt32((uint)errno);
        int length = writer.Finish();
        return exchange.CopyToReply(0, buffers.Reply.AsSpan(0, length)) == length ? length : 0;
    }

    /// <summary>Everything a handler needs for one request.</summary>
    private ref struct Call(IP9Exchange exchange, WorkerBuffers buffers, P9MessageType type, ushort tag, Span<byte> reply)
    {
        public P9Reader Body;
        public readonly IP9Exchange Exchange = exchange;
        public readonly WorkerBuffers Buffers = buffers;
        public readonly P9MessageType Type = type;
        public readonly ushort Tag = tag;
        public readonly Span<byte> Reply = reply;
        /// <summary>Set by zero-copy handlers that wrote their reply into the exchange themselves.</summary>
        public bool ReplyInExchange;
        /// <summary>The fids this request holds a reference on (no 9P2000.L request names more than two).</summary>
        private Fid? _held0, _held1;

        public void Hold(Fid fid)
        {
            if (_held0 is null)
            {
                _held0 = fid;
            }
            else if (_held1 is null)
            {
                _held1 = fid;
            }
            else
            {
                fid.Put();
                throw new InvalidOperationException("a request held more than two fids");
            }
        }

        public void PutFids()
        {
            _held0?.Put();
            _held1?.Put();
            _held0 = _held1 = null;
        }

        public readonly P9Writer StartReply(P9MessageType type) => new(Reply, type, Tag);

        /// <summary>A reply with no body (Rclunk, Rmkdir's siblings...).</summary>
        public readonly int Empty(P9MessageType type) => StartReply(type).Finish();
    }
}

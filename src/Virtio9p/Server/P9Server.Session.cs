using Microsoft.Extensions.Logging;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

public sealed partial class P9Server
{
    private static ReadOnlySpan<byte> Dialect => "9P2000.L"u8;

    /// <summary>Tversion: msize[4] version[s]. Starts a new session: every fid of the old one is clunked.</summary>
    private int Version(ref Call call)
    {
        uint requested = call.Body.ReadUInt32();
        ReadOnlySpan<byte> version = call.Body.ReadString(64);
        call.Body.ReadEnd();

        _fids.Clear();
        _qids.ResetOverflow();
        // version(5): a server that does not speak the dialect answers "unknown". "9P2000.L.x" style
        // suffixes are allowed by the spec; we only know the base dialect.
        bool known = version.SequenceEqual(Dialect) || (version.StartsWith(Dialect) && version[Dialect.Length] == (byte)'.');
        if (known && requested < P9Limits.MinMessageSize)
        {
            // A guest asking for a tiny msize: the errno QEMU's v9fs_version gives (an unknown dialect is
            // reported first, as there).
            return -Errno.EMSGSIZE;
        }
        int msize = (int)Math.Min(requested, (uint)_maxMessageSize);
        _msize = Math.Max(msize, P9Limits.MinMessageSize);
        P9Writer reply = call.StartReply(P9MessageType.Rversion);
        reply.WriteUInt32((uint)msize);
        reply.WriteString(known ? Dialect : "unknown"u8);
        if (_sessionLog.ShouldLog(_logger, LogLevel.Information))
        {
            _logger.LogInformation("9P session: msize {Msize}, version {Version}", msize, known ? "9P2000.L" : "unknown");
        }
        return reply.Finish();
    }

    /// <summary>The transport is gone (the front-end disconnected): clunks every fid, as a new Tversion would.
    /// Requests still running keep the fids they hold until they finish.</summary>
    public void EndSession()
    {
        _fids.Clear();
        _msize = _maxMessageSize;
    }

    /// <summary>Tattach: fid[4] afid[4] uname[s] aname[s] n_uname[4]. With access=user the Linux client
    /// attaches once per guest user and n_uname is that uid: it owns what this fid creates.</summary>
    private int Attach(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        uint afid = call.Body.ReadUInt32();
        call.Body.ReadString(P9Limits.MaxNameLength);
        call.Body.ReadString(P9Limits.MaxPathLength);
        uint nUname = call.Body.ReadUInt32();
        call.Body.ReadEnd();

        if (afid != P9Limits.NoFid)
        {
            return -Errno.EOPNOTSUPP; // no Tauth, so no afid can be valid
        }
        int result = _fs.Lstat(PathNames.Root, out FileStat attributes);
        if (result < 0)
        {
            return result;
        }
        uint uid = nUname == uint.MaxValue ? 0 : nUname; // P9_NONUNAME: a client that names no user
        result = AddFid(ref call, _fids.Rent(fidId, PathNames.Root, uid));
        if (result < 0)
        {
            return result;
        }
        P9Writer reply = call.StartReply(P9MessageType.Rattach);
        reply.WriteQid(_qids.ToQid(attributes));
        return reply.Finish();
    }

    /// <summary>Tflush: oldtag[2]. The virtio device answers flushes itself, in ring order, after the
    /// flushed request's reply (so the guest never sees a reply after Rflush). A Tflush reaching the
    /// server directly has nothing left to wait for.</summary>
    private int Flush(ref Call call)
    {
        call.Body.ReadUInt16();
        call.Body.ReadEnd();
        return call.Empty(P9MessageType.Rflush);
    }

    /// <summary>Tclunk: fid[4]. Forgets the fid; an xattr being written is committed now (its error, if any,
    /// is the clunk's, as in QEMU's v9fs_xattr_fid_clunk).</summary>
    private int Clunk(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        Fid? fid = _fids.Remove(fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        int result;
        lock (fid.Sync)
        {
            result = 0;
            if (fid.Kind == FidKind.XattrWrite)
            {
                result = CommitXattr(fid);
                CountChange(); // the xattr changed the file's ctime
            }
        }
        fid.Put();
        return result < 0 ? result : call.Empty(P9MessageType.Rclunk);
    }

    /// <summary>Tremove: fid[4]. Removes the file and clunks the fid, even when the removal fails (remove(5)).</summary>
    private int Remove(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        Fid? fid = _fids.Remove(fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        byte[] path = fid.Path;
        fid.Put(); // the last reference may go here, and the object become another fid: only its path is used below
        if (PathNames.IsRoot(path))
        {
            return -Errno.EBUSY;
        }
        int result = _fs.Remove(path);
        return result < 0 ? result : call.Empty(P9MessageType.Rremove);
    }

    /// <summary>The fid with a reference held for this request; <see cref="Serve"/> drops it after the reply.</summary>
    private Fid? GetFid(ref Call call, uint id)
    {
        Fid? fid = _fids.Acquire(id);
        if (fid is not null)
        {
            call.Hold(fid);
        }
        return fid;
    }
}

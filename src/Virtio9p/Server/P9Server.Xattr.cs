using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

public sealed partial class P9Server
{
    /// <summary>
    /// Txattrwalk: fid[4] newfid[4] name[s] -> size[8]. newfid becomes a read-only "file" holding the
    /// attribute's value (or, for an empty name, the list of names), which the client then Treads.
    /// </summary>
    private int XattrWalk(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        uint newFidId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
        call.Body.ReadEnd();
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        if (name.IndexOf((byte)0) >= 0)
        {
            return -Errno.EINVAL;
        }
        byte[] path = fid.Path;
        Span<byte> scratch = call.Buffers.Dirents.AsSpan(0, P9Limits.MaxXattrSize);
        int size = name.IsEmpty ? _fs.ListXattr(path, scratch) : _fs.GetXattr(path, name, scratch);
        if (size < 0)
        {
            return size;
        }
        int length = Math.Min(size, scratch.Length);
        int reserved = ReserveXattr(ref call, length);
        if (reserved < 0)
        {
            return reserved;
        }
        Fid xattrFid = _fids.Rent(newFidId, path, fid.Uid);
        xattrFid.Kind = FidKind.XattrRead;
        xattrFid.HoldXattr(new XattrState(name.ToArray(), scratch[..length].ToArray(), 0));
        int added = newFidId == fidId ? Replace(ref call, xattrFid) : AddFid(ref call, xattrFid);
        if (added < 0)
        {
            _budget.ReleaseXattr(length); // the fid never made it into the table: nothing else gives it back
            return added;
        }
        P9Writer reply = call.StartReply(P9MessageType.Rxattrwalk);
        reply.WriteUInt64((ulong)length);
        return reply.Finish();
    }

    private int Replace(ref Call call, Fid fid)
    {
        _fids.Remove(fid.Id)?.Put();
        return AddFid(ref call, fid);
    }

    /// <summary>
    /// Txattrcreate: fid[4] name[s] attr_size[8] flags[4]. fid becomes a write-only "file"; the value arrives
    /// in Twrites and is set at Tclunk. Size 0 removes the attribute (how the Linux client sends removexattr).
    /// </summary>
    private int XattrCreate(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
        ulong size = call.Body.ReadUInt64();
        uint flags = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        const uint XattrCreateFlag = 1, XattrReplaceFlag = 2;
        if (name.IsEmpty || name.IndexOf((byte)0) >= 0 || (flags & ~(XattrCreateFlag | XattrReplaceFlag)) != 0)
        {
            return -Errno.EINVAL;
        }
        if (size > P9Limits.MaxXattrSize)
        {
            return -Errno.E2BIG;
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
            // Reserved before the buffer exists: 16 Ki fids of 64 KiB each would otherwise pin 1 GiB.
            int reserved = ReserveXattr(ref call, (long)size);
            if (reserved < 0)
            {
                return reserved;
            }
            fid.Kind = FidKind.XattrWrite;
            fid.HoldXattr(new XattrState(name.ToArray(), new byte[size], (int)flags));
        }
        return call.Empty(P9MessageType.Rxattrcreate);
    }

    /// <summary>At Tclunk of a Txattrcreate fid: all announced bytes must have arrived (QEMU: EINVAL).</summary>
    private int CommitXattr(Fid fid)
    {
        XattrState state = fid.Xattr!;
        if (state.Written != state.Value.Length)
        {
            return -Errno.EINVAL;
        }
        return state.Value.Length == 0
            ? _fs.RemoveXattr(fid.Path, state.Name)
            : _fs.SetXattr(fid.Path, state.Name, state.Value, state.Flags);
    }
}

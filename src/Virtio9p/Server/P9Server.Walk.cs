using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

public sealed partial class P9Server
{
    /// <summary>
    /// Twalk: fid[4] newfid[4] nwname[2] nwname*wname[s]. Each step is checked on the host (lstat through the
    /// port), ".." at the export root stays at the root, and a walk that fails after its first step answers
    /// the qids it got (walk(5)) without creating newfid. nwname = 0 clones the fid. Walking an open fid in
    /// place (newfid == fid) is EINVAL.
    /// </summary>
    private int Walk(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        uint newFidId = call.Body.ReadUInt32();
        ushort count = call.Body.ReadUInt16();
        if (count > P9Limits.MaxWalkElements)
        {
            return -Errno.EINVAL;
        }
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        if (newFidId != fidId && _fids.Contains(newFidId))
        {
            return -Errno.EINVAL; // newfid must not be in use (walk(5))
        }

        // Read before the first lstat: a change served after this makes the kept attributes stale.
        long changes = Volatile.Read(ref _changes);
        FileStat last = default;
        P9Writer reply = call.StartReply(P9MessageType.Rwalk);
        Span<byte> countSlot = reply.Reserve(2);
        byte[] path = fid.Path;
        int walked = 0;
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
            int check = PathNames.Check(name);
            if (check < 0)
            {
                return check;
            }
            byte[] next = PathNames.IsDotDot(name) ? PathNames.Parent(path)
                : PathNames.IsDot(name) ? path
                : RecentWalkPath(path, name) ?? PathNames.Join(path, name);
            int result = _fs.Lstat(next, out FileStat attributes);
            if (result < 0)
            {
                if (i == 0)
                {
                    return result;
                }
                // Partial walk: the names not walked are still in the message; it is well formed as a
                // whole only if they parse, so read them before answering.
                for (int j = i + 1; j < count; j++)
                {
                    call.Body.ReadString(P9Limits.MaxNameLength);
                }
                break;
            }
            reply.WriteQid(_qids.ToQid(attributes));
            last = attributes;
            path = next;
            walked++;
        }
        call.Body.ReadEnd();

        if (walked == count)
        {
            if (newFidId == fidId)
            {
                // QEMU v9fs_walk: only a fid that holds nothing open may move in place; otherwise it would
                // name one file and hold another's fd (or xattr). Checked under the fid's lock, against a
                // racing Tlopen/Txattrcreate.
                lock (fid.Sync)
                {
                    if (fid.Kind != FidKind.Path)
                    {
                        return -Errno.EINVAL;
                    }
                    fid.Path = path;
                }
                if (count > 0)
                {
                    KeepWalkAttributes(fid, fid.Generation, path, changes, last);
                }
            }
            else
            {
                Fid newFid = _fids.Rent(newFidId, path, fid.Uid);
                // Before it is in the table: once it is, the guest may clunk it and the object become another fid.
                long generation = newFid.Generation;
                int added = AddFid(ref call, newFid);
                if (added < 0)
                {
                    return added;
                }
                if (count > 0)
                {
                    KeepWalkAttributes(newFid, generation, path, changes, last);
                }
            }
        }
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(countSlot, (ushort)walked);
        return reply.Finish();
    }
}

using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

public sealed partial class P9Server
{
    /// <summary>
    /// Treaddir: fid[4] offset[8] count[4] -> count[4] { qid[13] offset[8] type[1] name[s] }*. Reads the
    /// directory fd the helper gave us at Tlopen with getdents64. Offsets are the host's d_off cookies, which
    /// stay valid for seeking back (the Linux client's next Treaddir passes the d_off of the last entry it consumed).
    /// </summary>
    private unsafe int Readdir(ref Call call)
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
        SafeFileHandle? handle = fid.Handle;
        if (fid.Kind != FidKind.OpenDirectory || handle is null)
        {
            return -Errno.ENOTDIR;
        }
        if (offset > long.MaxValue)
        {
            return -Errno.EINVAL;
        }
        int result = StatHandle(handle, out FileStat directory);
        if (result < 0)
        {
            return result;
        }

        bool hideTypes = _fs.HidesHostFileTypes;
        P9Writer reply = call.StartReply(P9MessageType.Rreaddir);
        Span<byte> countSlot = reply.Reserve(4);
        int limit = (int)Math.Min(count, (uint)reply.Remaining);
        int used = 0;
        byte[] dirents = call.Buffers.Dirents;

        lock (fid.Sync)
        {
            using var use = new FdUse(handle);
            if ((long)offset != fid.DirectoryOffset)
            {
                if (LibC.lseek(use.Fd, (long)offset, 0 /* SEEK_SET */) < 0)
                {
                    return -LibC.errno;
                }
                fid.DirectoryOffset = (long)offset;
            }
            bool full = false;
            while (!full)
            {
                // Ask for about as many bytes as the reply has room for: linux_dirent64 is a little smaller
                // than the 9P entry, so one call nearly fills the reply.
                int want = Math.Clamp(limit - used, 512, dirents.Length);
                nint got;
                fixed (byte* buffer = dirents)
                {
                    got = Sys.Getdents64(handle, buffer, (nuint)want);
                }
                if (got < 0)
                {
                    int errno = LastErrno();
                    // A getdents buffer too small for even one entry: stop here, the guest asks again.
                    if (errno == Errno.EINVAL && used > 0)
                    {
                        break;
                    }
                    return -errno;
                }
                if (got == 0)
                {
                    break; // end of directory
                }
                int position = 0;
                while (position < got)
                {
                    // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
                    ReadOnlySpan<byte> record = dirents.AsSpan(position, (int)got - position);
                    ulong inode = BinaryPrimitives.ReadUInt64LittleEndian(record);
                    long next = BinaryPrimitives.ReadInt64LittleEndian(record[8..]);
                    int recordLength = BinaryPrimitives.ReadUInt16LittleEndian(record[16..]);
                    // DT_UNKNOWN when the host type is not the guest's (a mapped security model).
                    byte type = hideTypes ? (byte)0 : record[18];
                    ReadOnlySpan<byte> name = record[19..recordLength];
                    int end = name.IndexOf((byte)0);
                    name = end >= 0 ? name[..end] : name;
                    int entryLength = Qid.Size + 8 + 1 + 2 + name.Length;
                    if (used + entryLength > limit)
                    {
                        full = true;
                        break;
                    }
                    byte qidType = type switch { 4 => Qid.TypeDir, 10 => Qid.TypeSymlink, _ => Qid.TypeFile };
                    reply.WriteQid(new Qid(qidType, 0, _qids.Map(directory.Device, inode)));
                    reply.WriteUInt64((ulong)next);
                    reply.WriteByte(type);
                    reply.WriteString(name);
                    used += entryLength;
                    fid.DirectoryOffset = next;
                    position += recordLength;
                }
                if (position < got || full)
                {
                    // Entries read but not sent: put the directory offset back after the last one sent.
                    if (LibC.lseek(use.Fd, fid.DirectoryOffset, 0) < 0)
                    {
                        return -LibC.errno;
                    }
                    full = true;
                }
            }
        }
        BinaryPrimitives.WriteUInt32LittleEndian(countSlot, (uint)used);
        return reply.Finish();
    }

    /// <summary>Tmkdir: dfid[4] name[s] mode[4] gid[4] -> qid.</summary>
    private int Mkdir(ref Call call)
    {
        uint dirFidId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
        uint mode = call.Body.ReadUInt32();
        uint gid = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        if (!TryNewEntry(ref call, dirFidId, name, out Fid? dir, out byte[]? path, out int error))
        {
            return error;
        }
        int result = _fs.Mkdir(path, mode & 0xFFF /* 07777 */, dir.Uid, gid);
        return result < 0 ? result : ReplyWithQid(ref call, path, P9MessageType.Rmkdir);
    }

    /// <summary>Tmknod: dfid[4] name[s] mode[4] major[4] minor[4] gid[4] -> qid. Device nodes and fifos
    /// are created for the guest; the helper never opens them for us (CVE-2023-2861).</summary>
    private int Mknod(ref Call call)
    {
        uint dirFidId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
        uint mode = call.Body.ReadUInt32();
        uint major = call.Body.ReadUInt32();
        uint minor = call.Body.ReadUInt32();
        uint gid = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        if (!TryNewEntry(ref call, dirFidId, name, out Fid? dir, out byte[]? path, out int error))
        {
            return error;
        }
        int result = _fs.Mknod(path, mode, FileStat.MakeDevice(major, minor), dir.Uid, gid);
        return result < 0 ? result : ReplyWithQid(ref call, path, P9MessageType.Rmknod);
    }

    /// <summary>Tsymlink: fid[4] name[s] symtgt[s] gid[4] -> qid.</summary>
    private int Symlink(ref Call call)
    {
        uint dirFidId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
        ReadOnlySpan<byte> target = call.Body.ReadString(P9Limits.MaxPathLength);
        uint gid = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        if (target.IsEmpty || target.IndexOf((byte)0) >= 0)
        {
            return -Errno.ENOENT; // symlink(2) with an empty target; NUL cannot be in a C string
        }
        if (!TryNewEntry(ref call, dirFidId, name, out Fid? dir, out byte[]? path, out int error))
        {
            return error;
        }
        int result = _fs.Symlink(target, path, dir.Uid, gid);
        return result < 0 ? result : ReplyWithQid(ref call, path, P9MessageType.Rsymlink);
    }

    /// <summary>Treadlink: fid[4] -> target[s].</summary>
    private int Readlink(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        Fid? fid = GetFid(ref call, fidId);
        if (fid is null)
        {
            return -Errno.ENOENT;
        }
        Span<byte> target = call.Buffers.Dirents.AsSpan(0, P9Limits.MaxPathLength);
        int length = _fs.Readlink(fid.Path, target);
        if (length < 0)
        {
            return length;
        }
        P9Writer reply = call.StartReply(P9MessageType.Rreadlink);
        reply.WriteString(target[..Math.Min(length, target.Length)]);
        return reply.Finish();
    }

    /// <summary>Tlink: dfid[4] fid[4] name[s]: a hard link to fid's file named name in dfid.</summary>
    private int Link(ref Call call)
    {
        uint dirFidId = call.Body.ReadUInt32();
        uint fidId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
        call.Body.ReadEnd();
        Fid? target = GetFid(ref call, fidId);
        if (target is null)
        {
            return -Errno.ENOENT;
        }
        if (!TryNewEntry(ref call, dirFidId, name, out _, out byte[]? path, out int error))
        {
            return error;
        }
        int result = _fs.Link(target.Path, path);
        return result < 0 ? result : call.Empty(P9MessageType.Rlink);
    }

    /// <summary>Trename: fid[4] dfid[4] name[s]: moves fid's file into dfid as name.</summary>
    private int Rename(ref Call call)
    {
        uint fidId = call.Body.ReadUInt32();
        uint dirFidId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
        call.Body.ReadEnd();
        Fid? fid = GetFid(ref call, fidId);
        Fid? dir = GetFid(ref call, dirFidId);
        if (fid is null || dir is null)
        {
            return -Errno.ENOENT;
        }
        int check = CheckRenameName(name);
        if (check < 0)
        {
            return check;
        }
        if (PathNames.IsRoot(fid.Path))
        {
            return -Errno.EBUSY;
        }
        int result = RenamePath(ref call, fid.Path, PathNames.Join(dir.Path, name));
        return result < 0 ? result : call.Empty(P9MessageType.Rrename);
    }

    /// <summary>Trenameat: olddirfid[4] oldname[s] newdirfid[4] newname[s].</summary>
    private int Renameat(ref Call call)
    {
        uint oldDirId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> oldName = call.Body.ReadString(P9Limits.MaxNameLength);
        uint newDirId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> newName = call.Body.ReadString(P9Limits.MaxNameLength);
        call.Body.ReadEnd();
        Fid? oldDir = GetFid(ref call, oldDirId);
        Fid? newDir = GetFid(ref call, newDirId);
        if (oldDir is null || newDir is null)
        {
            return -Errno.ENOENT;
        }
        int check = CheckRenameName(oldName);
        if (check >= 0)
        {
            check = CheckRenameName(newName);
        }
        if (check < 0)
        {
            return check;
        }
        int result = RenamePath(ref call, PathNames.Join(oldDir.Path, oldName), PathNames.Join(newDir.Path, newName));
        return result < 0 ? result : call.Empty(P9MessageType.Rrenameat);
    }

    private int RenamePath(ref Call call, byte[] from, byte[] to)
    {
        if (PathNames.IsAtOrBelow(to, from) && !to.AsSpan().SequenceEqual(from))
        {
            return -Errno.EINVAL; // rename(2): a directory cannot move below itself
        }
        // Every fid below the old name follows it, and grows by the difference: many clones of a short name renamed
        // under a long path would otherwise allocate far past the budget in one request. Checked before the host
        // rename, so a refusal changes nothing. (The path lock, held exclusively here, keeps new fids out meanwhile.)
        long growth = (long)(to.Length - from.Length) * _fids.CountAtOrBelow(from);
        if (growth > 0 && !_budget.HasRoomForPaths(growth))
        {
            return Refused(call.Type, call.Tag, Errno.ENOMEM, "fid path bytes", _budget.Limits.MaxPathBytes);
        }
        int result = _fs.Rename(from, to);
        if (result >= 0)
        {
            _fids.Renamed(from, to);
        }
        return result;
    }

    /// <summary>QEMU: renaming "." or ".." is EISDIR.</summary>
    private static int CheckRenameName(ReadOnlySpan<byte> name)
    {
        int check = PathNames.Check(name);
        if (check < 0)
        {
            return check;
        }
        return PathNames.IsDot(name) || PathNames.IsDotDot(name) ? -Errno.EISDIR : 0;
    }

    /// <summary>Tunlinkat: dirfd[4] name[s] flags[4]. AT_REMOVEDIR removes a directory (ENOTEMPTY when it
    /// has entries), otherwise only a non-directory.</summary>
    private int Unlinkat(ref Call call)
    {
        uint dirFidId = call.Body.ReadUInt32();
        ReadOnlySpan<byte> name = call.Body.ReadString(P9Limits.MaxNameLength);
        uint flags = call.Body.ReadUInt32();
        call.Body.ReadEnd();
        const uint AtRemoveDir = 0x200;
        if ((flags & ~AtRemoveDir) != 0)
        {
            return -Errno.EINVAL;
        }
        int check = PathNames.Check(name);
        if (check < 0)
        {
            return check;
        }
        if (PathNames.IsDot(name))
        {
            return -Errno.EINVAL;
        }
        if (PathNames.IsDotDot(name))
        {
            return -Errno.ENOTEMPTY;
        }
        Fid? dir = GetFid(ref call, dirFidId);
        if (dir is null)
        {
            return -Errno.ENOENT;
        }
        byte[] path = PathNames.Join(dir.Path, name);
        int result;
        if (!TryRecentWalkType(path, out bool isDirectory)) // the client's lookup just before, usually
        {
            result = _fs.Lstat(path, out FileStat attributes);
            if (result < 0)
            {
                return result;
            }
            isDirectory = attributes.IsDirectory;
        }
        if ((flags & AtRemoveDir) != 0 && !isDirectory)
        {
            return -Errno.ENOTDIR;
        }
        if ((flags & AtRemoveDir) == 0 && isDirectory)
        {
            return -Errno.EISDIR;
        }
        result = _fs.Remove(path);
        return result < 0 ? result : call.Empty(P9MessageType.Runlinkat);
    }

    private bool TryNewEntry(ref Call call, uint dirFidId, ReadOnlySpan<byte> name,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Fid? dir,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? path, out int error)
    {
        path = null;
        dir = null;
        error = CheckNewName(name);
        if (error < 0)
        {
            return false;
        }
        dir = GetFid(ref call, dirFidId);
        if (dir is null)
        {
            error = -Errno.ENOENT;
            return false;
        }
        path = PathNames.Join(dir.Path, name);
        return true;
    }

    private int ReplyWithQid(ref Call call, byte[] path, P9MessageType type)
    {
        int result = _fs.Lstat(path, out FileStat attributes);
        if (result < 0)
        {
            return result;
        }
        P9Writer reply = call.StartReply(type);
        reply.WriteQid(_qids.ToQid(attributes));
        return reply.Finish();
    }
}

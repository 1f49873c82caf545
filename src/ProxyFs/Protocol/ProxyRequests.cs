namespace VirtFs.ProxyFs.Protocol;

// Decoded request bodies (the helper's side). Each Decode reads exactly the format string of
// hw/9pfs/9p-proxy.c v9fs_request for its type and rejects trailing bytes; strings are slices
// of the caller's buffer, valid only as long as it is.

/// <summary>T_OPEN "sd".</summary>
public readonly ref struct OpenRequest
{
    public readonly ReadOnlySpan<byte> Path;
    public readonly int Flags;

    private OpenRequest(ReadOnlySpan<byte> path, int flags) { Path = path; Flags = flags; }

    public static OpenRequest Decode(ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        var path = r.ReadString();
        int flags = r.ReadInt32();
        r.ReadEnd();
        return new OpenRequest(path, flags);
    }
}

/// <summary>T_CREATE "sdddd".</summary>
public readonly ref struct CreateRequest
{
    public readonly ReadOnlySpan<byte> Path;
    public readonly int Flags;
    public readonly uint Mode, Uid, Gid;

    private CreateRequest(ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid)
    { Path = path; Flags = flags; Mode = mode; Uid = uid; Gid = gid; }

    public static CreateRequest Decode(ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        var path = r.ReadString();
        int flags = r.ReadInt32();
        uint mode = r.ReadUInt32(), uid = r.ReadUInt32(), gid = r.ReadUInt32();
        r.ReadEnd();
        return new CreateRequest(path, flags, mode, uid, gid);
    }
}

/// <summary>T_MKNOD "ddsdq", T_MKDIR "ddsd", T_SYMLINK "ddss": the requester's uid/gid come first.</summary>
public readonly ref struct CreateOtherRequest
{
    public readonly uint Uid, Gid;
    /// <summary>The new object's path (for symlink: the link itself).</summary>
    public readonly ReadOnlySpan<byte> Path;
    /// <summary>Symlink target; empty for mknod/mkdir.</summary>
    public readonly ReadOnlySpan<byte> Target;
    public readonly uint Mode;
    public readonly ulong Rdev;

    private CreateOtherRequest(uint uid, uint gid, ReadOnlySpan<byte> path, ReadOnlySpan<byte> target, uint mode, ulong rdev)
    { Uid = uid; Gid = gid; Path = path; Target = target; Mode = mode; Rdev = rdev; }

    public static CreateOtherRequest Decode(ProxyRequestType type, ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        uint uid = r.ReadUInt32(), gid = r.ReadUInt32();
        ReadOnlySpan<byte> path, target = default;
        uint mode = 0;
        ulong rdev = 0;
        switch (type)
        {
            case ProxyRequestType.Mknod:
                path = r.ReadString();
                mode = r.ReadUInt32();
                rdev = r.ReadUInt64();
                break;
            case ProxyRequestType.Mkdir:
                path = r.ReadString();
                mode = r.ReadUInt32();
                break;
            case ProxyRequestType.Symlink:
                target = r.ReadString();
                path = r.ReadString();
                break;
            default:
                throw new InvalidOperationException($"{type} is not a create-other request");
        }
        r.ReadEnd();
        return new CreateOtherRequest(uid, gid, path, target, mode, rdev);
    }
}

/// <summary>"s" (lstat, statfs, remove, getversion), "ss" (link, rename, lremovexattr), "sd" (readlink, chmod),
/// "sdd" (chown), "sq" (truncate), "sqqqq" (utime): a path first, then fixed fields.</summary>
public readonly ref struct PathRequest
{
    public readonly ReadOnlySpan<byte> Path;
    /// <summary>Second string: link/rename new path, or the xattr name of lremovexattr.</summary>
    public readonly ReadOnlySpan<byte> Second;

    // The fixed fields after the path, in wire order; which ones a request has depends on its type, so they are
    // stored once and read through the names below.
    private readonly int _int0, _int1;
    private readonly long _long0, _long1, _long2, _long3;

    /// <summary>readlink: the size of the client's buffer (room for the target and its NUL).</summary>
    public int BufferSize => _int0;
    /// <summary>chmod: the new mode (permission and file type bits as the client sent them).</summary>
    public int Mode => _int0;
    /// <summary>chown: the new owner (-1 leaves it).</summary>
    public int Uid => _int0;
    /// <summary>chown: the new group (-1 leaves it).</summary>
    public int Gid => _int1;
    /// <summary>truncate: the new length.</summary>
    public long Length => _long0;
    /// <summary>utime: access time, seconds and nanoseconds (passed to utimensat as they are).</summary>
    public long AtimeSec => _long0;
    public long AtimeNsec => _long1;
    /// <summary>utime: modification time, seconds and nanoseconds.</summary>
    public long MtimeSec => _long2;
    public long MtimeNsec => _long3;

    private PathRequest(ReadOnlySpan<byte> path, ReadOnlySpan<byte> second, int i0, int i1, long l0, long l1, long l2, long l3)
    { Path = path; Second = second; _int0 = i0; _int1 = i1; _long0 = l0; _long1 = l1; _long2 = l2; _long3 = l3; }

    public static PathRequest Decode(ProxyRequestType type, ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        var path = r.ReadString();
        ReadOnlySpan<byte> second = default;
        int i0 = 0, i1 = 0;
        long l0 = 0, l1 = 0, l2 = 0, l3 = 0;
        switch (type)
        {
            case ProxyRequestType.Lstat:
            case ProxyRequestType.Statfs:
            case ProxyRequestType.Remove:
            case ProxyRequestType.GetVersion:
                break;
            case ProxyRequestType.Link:
            case ProxyRequestType.Rename:
            case ProxyRequestType.RemoveXattr:
                second = r.ReadString();
                break;
            case ProxyRequestType.Readlink:
            case ProxyRequestType.Chmod:
                i0 = r.ReadInt32();
                break;
            case ProxyRequestType.Chown:
                i0 = r.ReadInt32();
                i1 = r.ReadInt32();
                break;
            case ProxyRequestType.Truncate:
                l0 = r.ReadInt64();
                break;
            case ProxyRequestType.Utime:
                l0 = r.ReadInt64();
                l1 = r.ReadInt64();
                l2 = r.ReadInt64();
                l3 = r.ReadInt64();
                break;
            default:
                throw new InvalidOperationException($"{type} is not a path request");
        }
        r.ReadEnd();
        return new PathRequest(path, second, i0, i1, l0, l1, l2, l3);
    }
}

/// <summary>T_LGETXATTR "dss" (size, path, name) and T_LLISTXATTR "ds" (size, path).</summary>
public readonly ref struct GetXattrRequest
{
    public readonly int Size;
    public readonly ReadOnlySpan<byte> Path;
    /// <summary>Empty for llistxattr.</summary>
    public readonly ReadOnlySpan<byte> Name;

    private GetXattrRequest(int size, ReadOnlySpan<byte> path, ReadOnlySpan<byte> name) { Size = size; Path = path; Name = name; }

    public static GetXattrRequest Decode(ProxyRequestType type, ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        int size = r.ReadInt32();
        var path = r.ReadString();
        ReadOnlySpan<byte> name = default;
        if (type == ProxyRequestType.GetXattr) name = r.ReadString();
        else if (type != ProxyRequestType.ListXattr) throw new InvalidOperationException($"{type} is not a get/list xattr request");
        r.ReadEnd();
        return new GetXattrRequest(size, path, name);
    }
}

/// <summary>T_LSETXATTR "sssdd": path, name, value, size, flags.</summary>
public readonly ref struct SetXattrRequest
{
    public readonly ReadOnlySpan<byte> Path, Name, Value;
    public readonly int Size, Flags;

    private SetXattrRequest(ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int size, int flags)
    { Path = path; Name = name; Value = value; Size = size; Flags = flags; }

    public static SetXattrRequest Decode(ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        var path = r.ReadString();
        var name = r.ReadString();
        var value = r.ReadString();
        int size = r.ReadInt32(), flags = r.ReadInt32();
        r.ReadEnd();
        return new SetXattrRequest(path, name, value, size, flags);
    }
}

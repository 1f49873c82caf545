namespace VirtFs.ProxyFs.Protocol;

/// <summary>
/// Encodes whole requests (header + body) exactly as QEMU 7.2's hw/9pfs/9p-proxy.c v9fs_request does.
/// Each method returns the message length, or -1 when it does not fit <see cref="ProxyLimits.MaxBodySize"/>
/// (or the buffer). Format strings are quoted from 9p-proxy.c.
/// </summary>
public static class ProxyRequestEncoder
{
    /// <summary>T_OPEN "sd": path, flags.</summary>
    public static int Open(Span<byte> buffer, ReadOnlySpan<byte> path, int flags)
    {
        var w = Begin(buffer);
        w.WriteString(path);
        w.WriteInt32(flags);
        return Finish(buffer, ref w, ProxyRequestType.Open);
    }

    /// <summary>T_CREATE "sdddd": path, flags, mode, uid, gid.</summary>
    public static int Create(Span<byte> buffer, ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid)
    {
        var w = Begin(buffer);
        w.WriteString(path);
        w.WriteInt32(flags);
        w.WriteUInt32(mode);
        w.WriteUInt32(uid);
        w.WriteUInt32(gid);
        return Finish(buffer, ref w, ProxyRequestType.Create);
    }

    /// <summary>T_MKNOD "ddsdq": uid, gid, path, mode, rdev (uid/gid first for all create-others requests).</summary>
    public static int Mknod(Span<byte> buffer, ReadOnlySpan<byte> path, uint mode, ulong rdev, uint uid, uint gid)
    {
        var w = Begin(buffer);
        w.WriteUInt32(uid);
        w.WriteUInt32(gid);
        w.WriteString(path);
        w.WriteUInt32(mode);
        w.WriteUInt64(rdev);
        return Finish(buffer, ref w, ProxyRequestType.Mknod);
    }

    /// <summary>T_MKDIR "ddsd": uid, gid, path, mode.</summary>
    public static int Mkdir(Span<byte> buffer, ReadOnlySpan<byte> path, uint mode, uint uid, uint gid)
    {
        var w = Begin(buffer);
        w.WriteUInt32(uid);
        w.WriteUInt32(gid);
        w.WriteString(path);
        w.WriteUInt32(mode);
        return Finish(buffer, ref w, ProxyRequestType.Mkdir);
    }

    /// <summary>T_SYMLINK "ddss": uid, gid, target (oldpath), link path.</summary>
    public static int Symlink(Span<byte> buffer, ReadOnlySpan<byte> target, ReadOnlySpan<byte> linkPath, uint uid, uint gid)
    {
        var w = Begin(buffer);
        w.WriteUInt32(uid);
        w.WriteUInt32(gid);
        w.WriteString(target);
        w.WriteString(linkPath);
        return Finish(buffer, ref w, ProxyRequestType.Symlink);
    }

    /// <summary>T_LINK / T_RENAME / T_LREMOVEXATTR "ss".</summary>
    public static int TwoStrings(Span<byte> buffer, ProxyRequestType type, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var w = Begin(buffer);
        w.WriteString(a);
        w.WriteString(b);
        return Finish(buffer, ref w, type);
    }

    /// <summary>T_LSTAT / T_STATFS / T_REMOVE / T_GETVERSION "s".</summary>
    public static int PathOnly(Span<byte> buffer, ProxyRequestType type, ReadOnlySpan<byte> path)
    {
        var w = Begin(buffer);
        w.WriteString(path);
        return Finish(buffer, ref w, type);
    }

    /// <summary>T_READLINK / T_CHMOD "sd": path, size or mode.</summary>
    public static int PathInt(Span<byte> buffer, ProxyRequestType type, ReadOnlySpan<byte> path, int value)
    {
        var w = Begin(buffer);
        w.WriteString(path);
        w.WriteInt32(value);
        return Finish(buffer, ref w, type);
    }

    /// <summary>T_CHOWN "sdd": path, uid, gid.</summary>
    public static int Chown(Span<byte> buffer, ReadOnlySpan<byte> path, uint uid, uint gid)
    {
        var w = Begin(buffer);
        w.WriteString(path);
        w.WriteUInt32(uid);
        w.WriteUInt32(gid);
        return Finish(buffer, ref w, ProxyRequestType.Chown);
    }

    /// <summary>T_TRUNCATE "sq": path, size.</summary>
    public static int Truncate(Span<byte> buffer, ReadOnlySpan<byte> path, long size)
    {
        var w = Begin(buffer);
        w.WriteString(path);
        w.WriteInt64(size);
        return Finish(buffer, ref w, ProxyRequestType.Truncate);
    }

    /// <summary>T_UTIME "sqqqq": path, atime sec, atime nsec, mtime sec, mtime nsec. We send the real atime
    /// nsec; QEMU 7.2's driver sends the mtime nsec in that slot (docs/proxy-protocol.md).</summary>
    public static int Utime(Span<byte> buffer, ReadOnlySpan<byte> path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec)
    {
        var w = Begin(buffer);
        w.WriteString(path);
        w.WriteInt64(atimeSec);
        w.WriteInt64(atimeNsec);
        w.WriteInt64(mtimeSec);
        w.WriteInt64(mtimeNsec);
        return Finish(buffer, ref w, ProxyRequestType.Utime);
    }

    /// <summary>T_LGETXATTR "dss": size, path, name.</summary>
    public static int GetXattr(Span<byte> buffer, int size, ReadOnlySpan<byte> path, ReadOnlySpan<byte> name)
    {
        var w = Begin(buffer);
        w.WriteInt32(size);
        w.WriteString(path);
        w.WriteString(name);
        return Finish(buffer, ref w, ProxyRequestType.GetXattr);
    }

    /// <summary>T_LLISTXATTR "ds": size, path.</summary>
    public static int ListXattr(Span<byte> buffer, int size, ReadOnlySpan<byte> path)
    {
        var w = Begin(buffer);
        w.WriteInt32(size);
        w.WriteString(path);
        return Finish(buffer, ref w, ProxyRequestType.ListXattr);
    }

    /// <summary>T_LSETXATTR "sssdd": path, name, value, size (= value length), flags.</summary>
    public static int SetXattr(Span<byte> buffer, ReadOnlySpan<byte> path, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags)
    {
        var w = Begin(buffer);
        w.WriteString(path);
        w.WriteString(name);
        w.WriteString(value);
        w.WriteInt32(value.Length);
        w.WriteInt32(flags);
        return Finish(buffer, ref w, ProxyRequestType.SetXattr);
    }

    private static ProxyWriter Begin(Span<byte> buffer)
    {
        var w = new ProxyWriter(buffer);
        w.Skip(ProxyLimits.HeaderSize);
        return w;
    }

    private static int Finish(Span<byte> buffer, ref ProxyWriter w, ProxyRequestType type)
    {
        int body = w.Position - ProxyLimits.HeaderSize;
        if (w.Overflow || body > ProxyLimits.MaxBodySize) return -1;
        new ProxyHeader((uint)type, (uint)body).Write(buffer);
        return w.Position;
    }
}

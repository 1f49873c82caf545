namespace VirtFs.ProxyFs.Protocol;

/// <summary>
/// Replies as virtfs-proxy-helper.c builds them. send_status / send_response: header {T_SUCCESS or T_ERROR, size}
/// then the body; errors are always T_ERROR with one int, the negative errno. Open/create answer with a bare int
/// (see Transport/FdReply.cs). Each encoder returns the whole message length.
/// </summary>
public static class ProxyReplyEncoder
{
    /// <summary>send_status: "ddd" type, 4, status. Type is T_ERROR when status &lt; 0.</summary>
    public static int Status(Span<byte> buffer, int status)
    {
        var w = new ProxyWriter(buffer);
        w.WriteUInt32(status < 0 ? (uint)ProxyRequestType.Error : (uint)ProxyRequestType.Success);
        w.WriteUInt32(4);
        w.WriteInt32(status);
        return Checked(ref w);
    }

    /// <summary>send_response on failure: T_ERROR, 4, -errno.</summary>
    public static int Error(Span<byte> buffer, int negativeErrno)
    {
        if (negativeErrno >= 0) throw new ArgumentOutOfRangeException(nameof(negativeErrno));
        return Status(buffer, negativeErrno);
    }

    /// <summary>T_LSTAT reply body "qqqdddqqqqqqqqqq".</summary>
    public static int Stat(Span<byte> buffer, in ProxyStat s)
    {
        var w = new ProxyWriter(buffer);
        w.WriteUInt32((uint)ProxyRequestType.Success);
        w.WriteUInt32(ProxyLimits.StatSize);
        w.WriteUInt64(s.Dev); w.WriteUInt64(s.Ino); w.WriteUInt64(s.Nlink);
        w.WriteUInt32(s.Mode); w.WriteUInt32(s.Uid); w.WriteUInt32(s.Gid);
        w.WriteUInt64(s.Rdev); w.WriteUInt64(s.Size); w.WriteUInt64(s.Blksize); w.WriteUInt64(s.Blocks);
        w.WriteUInt64(s.AtimeSec); w.WriteUInt64(s.AtimeNsec);
        w.WriteUInt64(s.MtimeSec); w.WriteUInt64(s.MtimeNsec);
        w.WriteUInt64(s.CtimeSec); w.WriteUInt64(s.CtimeNsec);
        return Checked(ref w);
    }

    /// <summary>T_STATFS reply body "qqqqqqqqqqq".</summary>
    public static int StatFs(Span<byte> buffer, in ProxyStatFs s)
    {
        var w = new ProxyWriter(buffer);
        w.WriteUInt32((uint)ProxyRequestType.Success);
        w.WriteUInt32(ProxyLimits.StatFsSize);
        w.WriteUInt64(s.Type); w.WriteUInt64(s.Bsize); w.WriteUInt64(s.Blocks); w.WriteUInt64(s.Bfree);
        w.WriteUInt64(s.Bavail); w.WriteUInt64(s.Files); w.WriteUInt64(s.Ffree); w.WriteUInt64(s.Fsid0);
        w.WriteUInt64(s.Fsid1); w.WriteUInt64(s.Namelen); w.WriteUInt64(s.Frsize);
        return Checked(ref w);
    }

    /// <summary>"s" reply (readlink target, xattr value or list). Longer than a body allows: ENOBUFS, as send_response does.</summary>
    public static int String(Span<byte> buffer, ReadOnlySpan<byte> value)
    {
        if (value.Length > ProxyLimits.MaxReplyStringLength) return Status(buffer, -Errno.ENOBUFS);
        var w = new ProxyWriter(buffer);
        w.WriteUInt32((uint)ProxyRequestType.Success);
        w.WriteUInt32((uint)(2 + value.Length));
        w.WriteString(value);
        return Checked(ref w);
    }

    /// <summary>Getxattr/listxattr size query (size 0): T_SUCCESS, 4, size ("d").</summary>
    public static int Size(Span<byte> buffer, int size) => Status(buffer, size);

    /// <summary>T_GETVERSION reply body "q".</summary>
    public static int Version(Span<byte> buffer, ulong version)
    {
        var w = new ProxyWriter(buffer);
        w.WriteUInt32((uint)ProxyRequestType.Success);
        w.WriteUInt32(8);
        w.WriteUInt64(version);
        return Checked(ref w);
    }

    private static int Checked(ref ProxyWriter w)
    {
        if (w.Overflow) throw new InvalidOperationException("reply buffer too small");
        return w.Position;
    }
}

/// <summary>Reply body decoders for the client side. Each checks the exact size.</summary>
public static class ProxyReplyDecoder
{
    /// <summary>Status or error body: one int. A T_ERROR must carry a negative errno in range; T_SUCCESS any value &gt;= 0.</summary>
    public static int Status(ProxyHeader header, ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        int status = r.ReadInt32();
        r.ReadEnd();
        if (header.Type == (uint)ProxyRequestType.Error)
        {
            if (status >= 0 || status < -ProxyLimits.MaxErrno)
                throw new ProxyProtocolException($"error reply with status {status}");
        }
        else if (status < 0)
        {
            throw new ProxyProtocolException($"success reply with negative status {status}");
        }
        return status;
    }

    public static ProxyStat Stat(ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        var s = new ProxyStat(
            Dev: r.ReadUInt64(), Ino: r.ReadUInt64(), Nlink: r.ReadUInt64(),
            Mode: r.ReadUInt32(), Uid: r.ReadUInt32(), Gid: r.ReadUInt32(),
            Rdev: r.ReadUInt64(), Size: r.ReadUInt64(), Blksize: r.ReadUInt64(), Blocks: r.ReadUInt64(),
            AtimeSec: r.ReadUInt64(), AtimeNsec: r.ReadUInt64(),
            MtimeSec: r.ReadUInt64(), MtimeNsec: r.ReadUInt64(),
            CtimeSec: r.ReadUInt64(), CtimeNsec: r.ReadUInt64());
        r.ReadEnd();
        return s;
    }

    public static ProxyStatFs StatFs(ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        var s = new ProxyStatFs(
            Type: r.ReadUInt64(), Bsize: r.ReadUInt64(), Blocks: r.ReadUInt64(), Bfree: r.ReadUInt64(),
            Bavail: r.ReadUInt64(), Files: r.ReadUInt64(), Ffree: r.ReadUInt64(), Fsid0: r.ReadUInt64(),
            Fsid1: r.ReadUInt64(), Namelen: r.ReadUInt64(), Frsize: r.ReadUInt64());
        r.ReadEnd();
        return s;
    }

    public static ReadOnlySpan<byte> String(ReadOnlySpan<byte> body, int maxLength)
    {
        var r = new ProxyReader(body);
        var s = r.ReadString(maxLength);
        r.ReadEnd();
        return s;
    }

    public static ulong Version(ReadOnlySpan<byte> body)
    {
        var r = new ProxyReader(body);
        ulong v = r.ReadUInt64();
        r.ReadEnd();
        return v;
    }
}

using System.Runtime.InteropServices;
using VirtFs.ProxyFs;
using VirtFs.ProxyFs.Protocol;

namespace VirtFs.ProxyFs.Tests;

public class CodecTests
{
    private static byte[] Buf() => new byte[ProxyLimits.MaxMessageSize];

    private static (ProxyHeader Header, byte[] Body) Split(byte[] buf, int length)
    {
        var h = ProxyHeader.Read(buf);
        Assert.Equal(length - 8, (int)h.Size);
        return (h, buf.AsSpan(8, (int)h.Size).ToArray());
    }

    [Fact]
    public void OpenRequest_is_byte_identical_to_sd_format()
    {
        var buf = Buf();
        int n = ProxyRequestEncoder.Open(buf, "/a/b"u8, 0x241);
        var expected = new List<byte>();
        expected.AddRange(BitConverter.GetBytes(2u));             // T_OPEN
        expected.AddRange(BitConverter.GetBytes(2u + 4 + 4));     // size
        expected.AddRange(BitConverter.GetBytes((ushort)4));
        expected.AddRange("/a/b"u8.ToArray());
        expected.AddRange(BitConverter.GetBytes(0x241));
        Assert.Equal(expected.ToArray(), buf.AsSpan(0, n).ToArray());
        var (h, body) = Split(buf, n);
        Assert.Equal((uint)ProxyRequestType.Open, h.Type);
        var req = OpenRequest.Decode(body);
        Assert.True(req.Path.SequenceEqual("/a/b"u8));
        Assert.Equal(0x241, req.Flags);
    }

    [Fact]
    public void Create_and_create_others_round_trip()
    {
        var buf = Buf();
        int n = ProxyRequestEncoder.Create(buf, "f"u8, 0xC1, 0x1A4 /* 0644 */, 1000, 100);
        var (h, body) = Split(buf, n);
        Assert.Equal((uint)ProxyRequestType.Create, h.Type);
        var c = CreateRequest.Decode(body);
        Assert.True(c.Path.SequenceEqual("f"u8));
        Assert.Equal((0xC1, 0x1A4u, 1000u, 100u), (c.Flags, c.Mode, c.Uid, c.Gid));

        n = ProxyRequestEncoder.Mknod(buf, "n"u8, 0x1000 | 0x180 /* 0600 */, 0x1234_5678_9abcUL, 7, 8);
        (h, body) = Split(buf, n);
        Assert.Equal(7u, MemoryMarshal.Read<uint>(body)); // "ddsdq": uid first
        var m = CreateOtherRequest.Decode(ProxyRequestType.Mknod, body);
        Assert.Equal((7u, 8u, 0x1000u | 0x180 /* 0600 */, 0x1234_5678_9abcUL), (m.Uid, m.Gid, m.Mode, m.Rdev));
        Assert.True(m.Path.SequenceEqual("n"u8));

        n = ProxyRequestEncoder.Mkdir(buf, "d"u8, 0x1ED /* 0755 */, 1, 2);
        (_, body) = Split(buf, n);
        var d = CreateOtherRequest.Decode(ProxyRequestType.Mkdir, body);
        Assert.Equal((1u, 2u, 0x1EDu), (d.Uid, d.Gid, d.Mode));

        n = ProxyRequestEncoder.Symlink(buf, "target"u8, "link"u8, 3, 4);
        (_, body) = Split(buf, n);
        var s = CreateOtherRequest.Decode(ProxyRequestType.Symlink, body);
        Assert.True(s.Target.SequenceEqual("target"u8));
        Assert.True(s.Path.SequenceEqual("link"u8));
    }

    [Fact]
    public void Path_requests_round_trip()
    {
        var buf = Buf();
        int n = ProxyRequestEncoder.Utime(buf, "p"u8, 1, 2, 3, 4);
        var (h, body) = Split(buf, n);
        Assert.Equal((uint)ProxyRequestType.Utime, h.Type);
        var u = PathRequest.Decode(ProxyRequestType.Utime, body);
        Assert.Equal((1L, 2L, 3L, 4L), (u.AtimeSec, u.AtimeNsec, u.MtimeSec, u.MtimeNsec));

        n = ProxyRequestEncoder.Chown(buf, "p"u8, uint.MaxValue, 5);
        (_, body) = Split(buf, n);
        var c = PathRequest.Decode(ProxyRequestType.Chown, body);
        Assert.Equal((-1, 5), (c.Uid, c.Gid));

        n = ProxyRequestEncoder.TwoStrings(buf, ProxyRequestType.Rename, "a"u8, "bb"u8);
        (_, body) = Split(buf, n);
        var r = PathRequest.Decode(ProxyRequestType.Rename, body);
        Assert.True(r.Second.SequenceEqual("bb"u8));

        n = ProxyRequestEncoder.Truncate(buf, "p"u8, 1L << 40);
        (_, body) = Split(buf, n);
        Assert.Equal(1L << 40, PathRequest.Decode(ProxyRequestType.Truncate, body).Length);
    }

    [Fact]
    public void Xattr_requests_round_trip()
    {
        var buf = Buf();
        int n = ProxyRequestEncoder.GetXattr(buf, 100, "p"u8, "user.x"u8);
        var (_, body) = Split(buf, n);
        var g = GetXattrRequest.Decode(ProxyRequestType.GetXattr, body);
        Assert.Equal(100, g.Size);
        Assert.True(g.Name.SequenceEqual("user.x"u8));

        n = ProxyRequestEncoder.SetXattr(buf, "p"u8, "user.x"u8, new byte[] { 0, 1, 2 }, 1);
        (_, body) = Split(buf, n);
        var s = SetXattrRequest.Decode(body);
        Assert.Equal((3, 1), (s.Size, s.Flags));
        Assert.Equal(new byte[] { 0, 1, 2 }, s.Value.ToArray());
    }

    [Fact]
    public void Replies_round_trip()
    {
        var buf = Buf();
        var st = new ProxyStat(1, 2, 3, 0x81A4, 1000, 1000, 5, 6, 4096, 8, 9, 10, 11, 12, 13, 14);
        int n = ProxyReplyEncoder.Stat(buf, st);
        Assert.Equal(8 + 116, n);
        Assert.Equal(st, ProxyReplyDecoder.Stat(buf.AsSpan(8, n - 8)));

        var sf = new ProxyStatFs(0xEF53, 4096, 100, 50, 40, 1000, 900, 0xFFFFFFFFFFFFFFFF, 7, 255, 4096);
        n = ProxyReplyEncoder.StatFs(buf, sf);
        Assert.Equal(8 + 88, n);
        Assert.Equal(sf, ProxyReplyDecoder.StatFs(buf.AsSpan(8, n - 8)));

        n = ProxyReplyEncoder.Status(buf, -2);
        var h = ProxyHeader.Read(buf);
        Assert.Equal(((uint)ProxyRequestType.Error, 4u), (h.Type, h.Size));
        Assert.Equal(-2, ProxyReplyDecoder.Status(h, buf.AsSpan(8, 4)));

        n = ProxyReplyEncoder.String(buf, "tgt"u8);
        Assert.True(ProxyReplyDecoder.String(buf.AsSpan(8, n - 8), 10).SequenceEqual("tgt"u8));

        n = ProxyReplyEncoder.Version(buf, 42);
        Assert.Equal(42UL, ProxyReplyDecoder.Version(buf.AsSpan(8, n - 8)));
    }

    [Fact]
    public void Oversized_reply_string_becomes_ENOBUFS()
    {
        var buf = Buf();
        int n = ProxyReplyEncoder.String(buf, new byte[ProxyLimits.MaxReplyStringLength + 1]);
        var h = ProxyHeader.Read(buf);
        Assert.Equal((uint)ProxyRequestType.Error, h.Type);
        Assert.Equal(-Errno.ENOBUFS, ProxyReplyDecoder.Status(h, buf.AsSpan(8, n - 8)));
    }

    [Fact]
    public void Encoder_refuses_body_above_max()
    {
        var buf = Buf();
        var big = new byte[40000];
        Assert.Equal(-1, ProxyRequestEncoder.TwoStrings(buf, ProxyRequestType.Link, big, big));
        Assert.Equal(-1, ProxyRequestEncoder.SetXattr(buf, "p"u8, "n"u8, new byte[70000], 0));
    }

    [Fact]
    public void Oversized_header_is_rejected()
    {
        var h = new ProxyHeader((uint)ProxyRequestType.Open, ProxyLimits.MaxBodySize + 1);
        Assert.Throws<ProxyProtocolException>(() => h.CheckSize());
        new ProxyHeader((uint)ProxyRequestType.Open, ProxyLimits.MaxBodySize).CheckSize();
    }

    [Fact]
    public void Body_shorter_or_longer_than_format_is_rejected()
    {
        var buf = Buf();
        int n = ProxyRequestEncoder.Open(buf, "abc"u8, 0);
        byte[] body = buf.AsSpan(8, n - 8).ToArray();
        Assert.Throws<ProxyProtocolException>(() => OpenRequest.Decode(body.AsSpan(0, body.Length - 1)));
        byte[] longer = body.Concat(new byte[] { 0 }).ToArray();
        Assert.Throws<ProxyProtocolException>(() => OpenRequest.Decode(longer));
    }

    [Fact]
    public void String_longer_than_message_is_rejected()
    {
        byte[] body = new byte[2 + 3 + 4];
        MemoryMarshal.Write(body, (ushort)500);
        Assert.Throws<ProxyProtocolException>(() => OpenRequest.Decode(body));
        var r = new ProxyReader(new byte[] { 5, 0, 1, 2, 3, 4, 5 });
        try { r.ReadString(maxLength: 4); Assert.Fail("no throw"); } catch (ProxyProtocolException) { }
    }

    [Fact]
    public void Unknown_type_is_not_a_request()
    {
        Assert.False(ProxyRequestTypes.IsRequest(0));
        Assert.False(ProxyRequestTypes.IsRequest(1));
        Assert.False(ProxyRequestTypes.IsRequest(22));
        Assert.False(ProxyRequestTypes.IsRequest(uint.MaxValue));
        for (uint t = 2; t <= 21; t++) Assert.True(ProxyRequestTypes.IsRequest(t));
    }

    [Fact]
    public void Error_reply_with_positive_status_is_malformed()
    {
        var h = new ProxyHeader((uint)ProxyRequestType.Error, 4);
        Assert.Throws<ProxyProtocolException>(() => ProxyReplyDecoder.Status(h, BitConverter.GetBytes(5)));
        Assert.Throws<ProxyProtocolException>(() => ProxyReplyDecoder.Status(h, BitConverter.GetBytes(-100000)));
    }
}

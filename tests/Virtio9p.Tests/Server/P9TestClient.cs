using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;
using VirtFs.Virtio9p.Server;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Builds T-messages the way the Linux client does and decodes the replies.</summary>
internal sealed class P9TestClient
{
    private readonly WorkerBuffers _buffers = new();
    private readonly WorkerBuffers _queueThreadBuffers = new() { MustNotBlock = true };
    private ushort _nextTag = 1;

    public P9TestClient(IFileSystem fileSystem, int msize = 131072)
    {
        Server = new P9Server(fileSystem, NullLogger.Instance);
        MessageSize = msize;
    }

    /// <summary>A second client of the same server (its own buffers and tags), as a second worker would be.</summary>
    public P9TestClient(P9Server server, int msize = 131072)
    {
        Server = server;
        MessageSize = msize;
    }

    public P9Server Server { get; }
    public int MessageSize { get; }

    /// <summary>Serve as the queue thread does (buffers that must not block): a request may come back unserved
    /// (<see cref="Reply.GivenBack"/>).</summary>
    public bool AsQueueThread { get; set; }

    /// <summary>Exchanges refuse direct access to their buffers (the transport's front-end is gone).</summary>
    public bool BuffersRevoked { get; set; }

    /// <summary>The next exchanges' front-end goes away right after their header is read.</summary>
    public bool GoneAfterHeader { get; set; }

    /// <summary>Sends a message built by <paramref name="body"/>; returns the reply bytes.</summary>
    public Reply Call(P9MessageType type, Action<Builder> body, int? replyCapacity = null, int[]? replySplits = null, int[]? requestSplits = null)
    {
        var builder = new Builder();
        body(builder);
        byte[] bodyBytes = builder.ToArray();
        byte[] message = new byte[P9Limits.HeaderSize + bodyBytes.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        message[4] = (byte)type;
        ushort tag = type == P9MessageType.Tversion ? P9Limits.NoTag : _nextTag++;
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(5), tag);
        bodyBytes.CopyTo(message, P9Limits.HeaderSize);
        return Raw(message, replyCapacity ?? MessageSize, replySplits, requestSplits);
    }

    public Reply Raw(byte[] message, int replyCapacity, int[]? replySplits = null, int[]? requestSplits = null)
    {
        using var exchange = new ScatteredExchange(message, replyCapacity, requestSplits, replySplits)
        {
            Revoked = BuffersRevoked,
            GoneAfterHeader = GoneAfterHeader,
        };
        int length = Server.Serve(exchange, AsQueueThread ? _queueThreadBuffers : _buffers, out _);
        if (length == P9Server.NotServedHere)
        {
            return new Reply([]) { GivenBack = true };
        }
        return new Reply(exchange.Reply[..length]);
    }

    public void Handshake(uint rootFid = 0, uint uid = 0)
    {
        Reply v = Call(P9MessageType.Tversion, b => b.U32((uint)MessageSize).Str("9P2000.L"));
        v.Expect(P9MessageType.Rversion);
        Call(P9MessageType.Tattach, b => b.U32(rootFid).U32(P9Limits.NoFid).Str("root").Str("").U32(uid))
            .Expect(P9MessageType.Rattach);
    }

    public Reply Walk(uint fid, uint newFid, params string[] names) =>
        Call(P9MessageType.Twalk, b =>
        {
            b.U32(fid).U32(newFid).U16((ushort)names.Length);
            foreach (string n in names) b.Str(n);
        });

    public sealed class Builder
    {
        private readonly MemoryStream _stream = new();
        public Builder U8(byte v) { _stream.WriteByte(v); return this; }
        public Builder U16(ushort v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); _stream.Write(b); return this; }
        public Builder U32(uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); _stream.Write(b); return this; }
        public Builder U64(ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); _stream.Write(b); return this; }
        public Builder Str(string s) { byte[] bytes = Encoding.UTF8.GetBytes(s); U16((ushort)bytes.Length); _stream.Write(bytes); return this; }
        public Builder Bytes(byte[] data) { _stream.Write(data); return this; }
        public byte[] ToArray() => _stream.ToArray();
    }

    public sealed class Reply(byte[] bytes)
    {
        private int _position = P9Limits.HeaderSize;
        public byte[] Bytes { get; } = bytes;
        /// <summary>The server answered nothing: the request is for a thread that may block (a worker).</summary>
        public bool GivenBack { get; init; }
        public P9MessageType Type => (P9MessageType)Bytes[4];
        public int Size => BinaryPrimitives.ReadInt32LittleEndian(Bytes);

        public Reply Expect(P9MessageType type)
        {
            if (GivenBack)
            {
                throw new Xunit.Sdk.XunitException($"expected {type}, but the request was given back unserved");
            }
            if (Type == P9MessageType.Rlerror && type != P9MessageType.Rlerror)
            {
                throw new Xunit.Sdk.XunitException($"expected {type}, got Rlerror errno {Errno}");
            }
            Assert.Equal(type, Type);
            Assert.Equal(Bytes.Length, Size);
            return this;
        }

        public int Errno => Type == P9MessageType.Rlerror ? BinaryPrimitives.ReadInt32LittleEndian(Bytes.AsSpan(7)) : 0;

        public byte U8() => Bytes[_position++];
        public ushort U16() { ushort v = BinaryPrimitives.ReadUInt16LittleEndian(Bytes.AsSpan(_position)); _position += 2; return v; }
        public uint U32() { uint v = BinaryPrimitives.ReadUInt32LittleEndian(Bytes.AsSpan(_position)); _position += 4; return v; }
        public ulong U64() { ulong v = BinaryPrimitives.ReadUInt64LittleEndian(Bytes.AsSpan(_position)); _position += 8; return v; }
        public string Str() { int n = U16(); string s = Encoding.UTF8.GetString(Bytes, _position, n); _position += n; return s; }
        public byte[] Take(int n) { byte[] b = Bytes[_position..(_position + n)]; _position += n; return b; }
        public Qid Qid() { byte t = U8(); uint v = U32(); ulong p = U64(); return new Qid(t, v, p); }
        public bool AtEnd => _position == Bytes.Length;
    }
}

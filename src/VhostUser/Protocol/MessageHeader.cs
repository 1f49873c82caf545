using System.Buffers.Binary;

namespace VirtFs.VhostUser;

/// <summary>The 12-byte vhost-user header: u32 request, u32 flags, u32 size (vhost-user.rst, "Message Specification").</summary>
internal readonly record struct MessageHeader(uint Request, uint Flags, uint Size)
{
    public const int Length = 12;
    public const uint VersionMask = 0x3;
    public const uint Version1 = 0x1;
    public const uint ReplyFlag = 0x4;
    public const uint NeedReplyFlag = 0x8;
    public const uint KnownFlags = VersionMask | ReplyFlag | NeedReplyFlag;

    public VhostUserRequestType Type => (VhostUserRequestType)Request;
    public bool NeedReply => (Flags & NeedReplyFlag) != 0;

    public static MessageHeader Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(b),
        BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[8..]));

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, Request);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], Size);
    }
}

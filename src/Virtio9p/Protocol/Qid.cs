using System.Buffers.Binary;

namespace VirtFs.Virtio9p.Protocol;

/// <summary>qid[13]: type[1] version[4] path[8]. The server's identity for a file.</summary>
public readonly record struct Qid(byte Type, uint Version, ulong Path)
{
    public const int Size = 13;
    public const byte TypeDir = 0x80;
    public const byte TypeAppend = 0x40;
    public const byte TypeExclusive = 0x20;
    public const byte TypeMount = 0x10;
    public const byte TypeAuth = 0x08;
    public const byte TypeTmp = 0x04;
    public const byte TypeSymlink = 0x02;
    public const byte TypeLink = 0x01;
    public const byte TypeFile = 0x00;

    public void Write(Span<byte> destination)
    {
        destination[0] = Type;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[1..], Version);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[5..], Path);
    }
}

using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace VirtFs.Virtio9p.Protocol;

/// <summary>
/// Reads 9P fields (little-endian) from a message body. Every read checks what remains first and throws
/// <see cref="P9ProtocolException"/> on short data; a failed read consumes nothing. Strings are
/// returned as spans into the message: no allocation.
/// </summary>
public ref struct P9Reader(ReadOnlySpan<byte> buffer)
{
    private readonly ReadOnlySpan<byte> _buffer = buffer;
    private int _position;

    public readonly int Remaining => _buffer.Length - _position;
    public readonly int Position => _position;

    public byte ReadByte()
    {
        Need(1);
        return _buffer[_position++];
    }

    public ushort ReadUInt16()
    {
        Need(2);
        ushort value = BinaryPrimitives.ReadUInt16LittleEndian(_buffer[_position..]);
        _position += 2;
        return value;
    }

    public uint ReadUInt32()
    {
        Need(4);
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(_buffer[_position..]);
        _position += 4;
        return value;
    }

    public ulong ReadUInt64()
    {
        Need(8);
        ulong value = BinaryPrimitives.ReadUInt64LittleEndian(_buffer[_position..]);
        _position += 8;
        return value;
    }

    /// <summary>string[s]: len[2] then len bytes (UTF-8 by convention; we keep raw bytes, as Linux names are).</summary>
    public ReadOnlySpan<byte> ReadString(int maxLength)
    {
        Need(2);
        int length = BinaryPrimitives.ReadUInt16LittleEndian(_buffer[_position..]);
        if (length > maxLength)
        {
            ThrowTooLong(length, maxLength);
        }
        if (length > Remaining - 2)
        {
            ThrowShort(2 + length);
        }
        ReadOnlySpan<byte> value = _buffer.Slice(_position + 2, length);
        _position += 2 + length;
        return value;
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0)
        {
            ThrowShort(count);
        }
        Need(count);
        ReadOnlySpan<byte> value = _buffer.Slice(_position, count);
        _position += count;
        return value;
    }

    /// <summary>A message with bytes after its last field is malformed (its size field lied).</summary>
    public readonly void ReadEnd()
    {
        if (Remaining != 0)
        {
            throw new P9ProtocolException($"{Remaining} unexpected trailing bytes");
        }
    }

    private readonly void Need(int count)
    {
        if (count > Remaining)
        {
            ThrowShort(count);
        }
    }

    [DoesNotReturn]
    private readonly void ThrowShort(int wanted) =>
        throw new P9ProtocolException($"message too short: wanted {wanted} bytes at offset {_position}, {Remaining} left");

    [DoesNotReturn]
    private static void ThrowTooLong(int length, int max) =>
        throw new P9ProtocolException($"string of {length} bytes exceeds the limit of {max}");
}

using System.Buffers.Binary;

namespace VirtFs.Virtio9p.Protocol;

/// <summary>
/// Writes a 9P reply into a caller-owned buffer. Running out of room is our bug (handlers size replies
/// against msize), so it throws <see cref="InvalidOperationException"/>.
/// </summary>
public ref struct P9Writer
{
    private readonly Span<byte> _buffer;
    private int _position;

    /// <summary>Starts a reply: reserves size[4], writes type[1] tag[2].</summary>
    public P9Writer(Span<byte> buffer, P9MessageType type, ushort tag)
    {
        _buffer = buffer;
        _position = 0;
        Need(P9Limits.HeaderSize);
        buffer[4] = (byte)type;
        BinaryPrimitives.WriteUInt16LittleEndian(buffer[5..], tag);
        _position = P9Limits.HeaderSize;
    }

    public readonly int Position => _position;
    public readonly int Remaining => _buffer.Length - _position;

    public void WriteByte(byte value)
    {
        Need(1);
        _buffer[_position++] = value;
    }

    public void WriteUInt16(ushort value)
    {
        Need(2);
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[_position..], value);
        _position += 2;
    }

    public void WriteUInt32(uint value)
    {
        Need(4);
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer[_position..], value);
        _position += 4;
    }

    public void WriteUInt64(ulong value)
    {
        Need(8);
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer[_position..], value);
        _position += 8;
    }

    public void WriteString(ReadOnlySpan<byte> value)
    {
        if (value.Length > ushort.MaxValue)
        {
            throw new InvalidOperationException("9P string longer than 65535 bytes");
        }
        Need(2 + value.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[_position..], (ushort)value.Length);
        value.CopyTo(_buffer[(_position + 2)..]);
        _position += 2 + value.Length;
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        Need(value.Length);
        value.CopyTo(_buffer[_position..]);
        _position += value.Length;
    }

    public void WriteQid(in Qid qid)
    {
        Need(Qid.Size);
        qid.Write(_buffer[_position..]);
        _position += Qid.Size;
    }

    /// <summary>Reserves <paramref name="count"/> bytes to be filled later (e.g. a count field).</summary>
    public Span<byte> Reserve(int count)
    {
        Need(count);
        Span<byte> slot = _buffer.Slice(_position, count);
        _position += count;
        return slot;
    }

    /// <summary>Writes the size field and returns the whole message length.</summary>
    public readonly int Finish()
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer, (uint)_position);
        return _position;
    }

    private readonly void Need(int count)
    {
        if (count > _buffer.Length - _position)
        {
            throw new P9ReplyOverflowException(_buffer.Length);
        }
    }
}

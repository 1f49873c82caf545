using System.Runtime.InteropServices;

namespace VirtFs.ProxyFs.Protocol;

/// <summary>
/// Host-endian writer, the mirror of <see cref="ProxyReader"/>. A write that does not fit sets
/// <see cref="Overflow"/> and writes nothing, so encoders can report "too big" (ENOBUFS/ENAMETOOLONG)
/// as an errno instead of throwing on caller input.
/// </summary>
public ref struct ProxyWriter
{
    private readonly Span<byte> _buffer;
    private int _position;

    public ProxyWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
        Overflow = false;
    }

    public bool Overflow { get; private set; }
    public readonly int Position => _position;

    public void Skip(int count)
    {
        if (!Reserve(count)) return;
        _position += count;
    }

    public void WriteInt32(int value)
    {
        if (!Reserve(4)) return;
        MemoryMarshal.Write(_buffer[_position..], value);
        _position += 4;
    }

    public void WriteUInt32(uint value) => WriteInt32(unchecked((int)value));

    public void WriteUInt64(ulong value)
    {
        if (!Reserve(8)) return;
        MemoryMarshal.Write(_buffer[_position..], value);
        _position += 8;
    }

    public void WriteInt64(long value) => WriteUInt64(unchecked((ulong)value));

    /// <summary>Writes an 's' string (u16 length + bytes); longer than 65535 bytes is an overflow.</summary>
    public void WriteString(ReadOnlySpan<byte> value)
    {
        if (value.Length > ProxyLimits.MaxStringLength) { Overflow = true; return; }
        if (!Reserve(2 + value.Length)) return;
        MemoryMarshal.Write(_buffer[_position..], (ushort)value.Length);
        value.CopyTo(_buffer[(_position + 2)..]);
        _position += 2 + value.Length;
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        if (!Reserve(value.Length)) return;
        value.CopyTo(_buffer[_position..]);
        _position += value.Length;
    }

    private bool Reserve(int count)
    {
        if (Overflow || _buffer.Length - _position < count)
        {
            Overflow = true;
            return false;
        }
        return true;
    }
}

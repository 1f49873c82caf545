using System.Runtime.InteropServices;

namespace VirtFs.ProxyFs.Protocol;

/// <summary>
/// Host-endian reader for proxy message bodies (fsdev/9p-iov-marshal.c with bswap = 0):
/// 'd' = 32-bit int, 'q' = 64-bit int, 's' = u16 length + bytes. Every read checks what remains
/// and throws <see cref="ProxyProtocolException"/> without consuming anything; strings come back as
/// slices of the source (no allocation).
/// </summary>
public ref struct ProxyReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    public ProxyReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    public readonly int Remaining => _data.Length - _position;
    public readonly int Position => _position;

    public int ReadInt32()
    {
        if (Remaining < 4) ThrowHelper.Short();
        int v = MemoryMarshal.Read<int>(_data[_position..]);
        _position += 4;
        return v;
    }

    public uint ReadUInt32() => unchecked((uint)ReadInt32());

    public ulong ReadUInt64()
    {
        if (Remaining < 8) ThrowHelper.Short();
        ulong v = MemoryMarshal.Read<ulong>(_data[_position..]);
        _position += 8;
        return v;
    }

    public long ReadInt64() => unchecked((long)ReadUInt64());

    /// <summary>Reads an 's' string; its declared length must fit both the message and <paramref name="maxLength"/>.</summary>
    public ReadOnlySpan<byte> ReadString(int maxLength = ProxyLimits.MaxStringLength)
    {
        if (Remaining < 2) ThrowHelper.Short();
        int length = MemoryMarshal.Read<ushort>(_data[_position..]);
        if (length > maxLength) ThrowHelper.StringTooLong(length, maxLength);
        if (Remaining - 2 < length) ThrowHelper.Short();
        ReadOnlySpan<byte> s = _data.Slice(_position + 2, length);
        _position += 2 + length;
        return s;
    }

    /// <summary>Rejects trailing bytes: a body must be exactly what its format string describes.</summary>
    public readonly void ReadEnd()
    {
        if (Remaining != 0) ThrowHelper.Trailing(Remaining);
    }
}

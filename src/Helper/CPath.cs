using VirtFs.ProxyFs.Protocol;

namespace VirtFs.Helper;

/// <summary>A reusable buffer that turns a wire string into a NUL-terminated C string. A wire string holding a
/// NUL would be cut short by the kernel and name something else than the client asked for: EINVAL.</summary>
internal sealed class CPath
{
    private readonly byte[] _buffer = new byte[ProxyLimits.MaxStringLength + 1];

    /// <summary>Returns 0 and the pinned-able array, or -EINVAL.</summary>
    public int Set(ReadOnlySpan<byte> value, out byte[] cstring)
    {
        cstring = _buffer;
        if (value.IndexOf((byte)0) >= 0) return -ProxyErrno.EINVAL;
        value.CopyTo(_buffer);
        _buffer[value.Length] = 0;
        return 0;
    }
}

using VirtFs.ProxyFs.Protocol;

namespace VirtFs.Helper;

/// <summary>A reusable buffer that turns a wire string into a NUL-terminated C string. A wire string holding a
/// NUL would be cut short by the kernel and name something else than the client asked for: EINVAL.
/// Exception: ONE trailing NUL is the terminator and is accepted. QEMU 7.2's driver (9p-proxy.c) marshals a
/// V9fsPath as an "s" string, and V9fsPath.size counts the terminating NUL (v9fs_path_sprintf), so every
/// request naming an existing path (lstat "/" at device realize, open, chmod, ...) arrives as "path\0".</summary>
internal sealed class CPath
{
    private readonly byte[] _buffer = new byte[ProxyLimits.MaxStringLength + 1];

    /// <summary>Returns 0 and the pinned-able array, or -EINVAL.</summary>
    public int Set(ReadOnlySpan<byte> value, out byte[] cstring)
    {
        cstring = _buffer;
        if (value.Length > 0 && value[^1] == 0) value = value[..^1];
        if (value.IndexOf((byte)0) >= 0) return -Errno.EINVAL;
        value.CopyTo(_buffer);
        _buffer[value.Length] = 0;
        return 0;
    }
}

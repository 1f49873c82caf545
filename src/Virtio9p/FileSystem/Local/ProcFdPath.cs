namespace VirtFs.Virtio9p.FileSystem.Local;

/// <summary>
/// "/proc/self/fd/N": the way to act on an object we hold only as an O_PATH fd when the syscall has no
/// fd or AT_EMPTY_PATH form (chmod, truncate, the xattr family, reopening with real access flags). The
/// magic link resolves to exactly the object the fd pins, so nothing renamed or swapped in meanwhile is reached;
/// if that object is a symlink, the kernel acts on the symlink and does not follow it further.
/// </summary>
internal static class ProcFdPath
{
    /// <summary>Big enough for the prefix, a 10-digit fd and the NUL.</summary>
    public const int BufferSize = 32;

    public static ReadOnlySpan<byte> Format(int fd, Span<byte> buffer)
    {
        ReadOnlySpan<byte> prefix = "/proc/self/fd/"u8;
        prefix.CopyTo(buffer);
        if (!fd.TryFormat(buffer[prefix.Length..], out int written, provider: System.Globalization.CultureInfo.InvariantCulture))
        {
            throw new InvalidOperationException("fd number does not fit the /proc path buffer");
        }
        buffer[prefix.Length + written] = 0;
        return buffer[..(prefix.Length + written + 1)];
    }
}

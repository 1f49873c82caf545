namespace VirtFs.Virtio9p.FileSystem.Local;

/// <summary>
/// An <see cref="IFileSystem"/> path ("/" or "/a/b") split for the *at calls: the parent directory relative to
/// the export root (resolved with openat2 RESOLVE_IN_ROOT), the last name (used only on that parent fd), and the
/// whole path relative to the root. All three are NUL-terminated views into a caller's scratch buffer.
/// The last name is never "." or "..": on the parent fd "..", would name the parent's parent, which for a
/// top-level name is outside the export. The walker never sends them; refusing here keeps that true by construction.
/// </summary>
internal readonly ref struct LocalPath
{
    /// <summary>PATH_MAX including the NUL (linux/limits.h).</summary>
    public const int MaxPathLength = 4095;

    /// <summary>NAME_MAX (linux/limits.h).</summary>
    public const int MaxNameLength = 255;

    /// <summary>Scratch needed by <see cref="Parse"/>: three NUL-terminated copies of at most a path each.</summary>
    public const int ScratchSize = 3 * (MaxPathLength + 2);

    private LocalPath(bool isRoot, ReadOnlySpan<byte> parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> relative)
    {
        IsRoot = isRoot;
        Parent = parent;
        Name = name;
        Relative = relative;
    }

    /// <summary>The export root itself: there is no parent and no name.</summary>
    public bool IsRoot { get; }

    /// <summary>Parent directory relative to the root, "." for a top-level name; NUL-terminated.</summary>
    public ReadOnlySpan<byte> Parent { get; }

    /// <summary>Last component; NUL-terminated; empty (just the NUL) for the root.</summary>
    public ReadOnlySpan<byte> Name { get; }

    /// <summary>The whole path relative to the root, "." for the root; NUL-terminated.</summary>
    public ReadOnlySpan<byte> Relative { get; }

    /// <summary>Returns 0 or -errno: ENOENT for an empty path (as path_lookup does), ENAMETOOLONG above
    /// PATH_MAX or NAME_MAX, EINVAL for an embedded NUL (it would cut the C string), a relative path, or a last
    /// name of "." or "..".</summary>
    public static int Parse(ReadOnlySpan<byte> path, Span<byte> scratch, out LocalPath result)
    {
        result = default;
        if (path.IsEmpty) return -Errno.ENOENT;
        if (path.Length > MaxPathLength) return -Errno.ENAMETOOLONG;
        if (path.IndexOf((byte)0) >= 0 || path[0] != (byte)'/') return -Errno.EINVAL;
        if (scratch.Length < ScratchSize) throw new ArgumentException("scratch too small", nameof(scratch));

        ReadOnlySpan<byte> trimmed = path.TrimEnd((byte)'/').TrimStart((byte)'/');
        Span<byte> parentBuf = scratch[..(MaxPathLength + 2)];
        Span<byte> nameBuf = scratch.Slice(MaxPathLength + 2, MaxPathLength + 2);
        Span<byte> relBuf = scratch[(2 * (MaxPathLength + 2))..];
        if (trimmed.IsEmpty)
        {
            result = new LocalPath(true, Terminate(".", parentBuf), Terminate("", nameBuf), Terminate(".", relBuf));
            return 0;
        }

        int slash = trimmed.LastIndexOf((byte)'/');
        ReadOnlySpan<byte> name = trimmed[(slash + 1)..];
        ReadOnlySpan<byte> parent = slash < 0 ? "."u8 : trimmed[..slash].TrimEnd((byte)'/');
        if (parent.IsEmpty) parent = "."u8;
        if (name.Length > MaxNameLength) return -Errno.ENAMETOOLONG;
        if (name.SequenceEqual("."u8) || name.SequenceEqual(".."u8)) return -Errno.EINVAL;
        result = new LocalPath(false, Terminate(parent, parentBuf), Terminate(name, nameBuf), Terminate(trimmed, relBuf));
        return 0;
    }

    private static ReadOnlySpan<byte> Terminate(ReadOnlySpan<byte> text, Span<byte> buffer)
    {
        text.CopyTo(buffer);
        buffer[text.Length] = 0;
        return buffer[..(text.Length + 1)];
    }

    private static ReadOnlySpan<byte> Terminate(string ascii, Span<byte> buffer)
    {
        for (int i = 0; i < ascii.Length; i++) buffer[i] = (byte)ascii[i];
        buffer[ascii.Length] = 0;
        return buffer[..(ascii.Length + 1)];
    }
}

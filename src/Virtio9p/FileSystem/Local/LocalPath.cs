using System.Buffers;
using VirtFs.ProxyFs.Protocol;

namespace VirtFs.Virtio9p.FileSystem.Local;

/// <summary>
/// An <see cref="IFileSystem"/> path ("/" or "/a/b") split for the *at calls: the parent directory relative to
/// the export root (resolved with openat2 RESOLVE_IN_ROOT), the last name (used only on that parent fd), and the
/// whole path relative to the root. All three are NUL-terminated views into a caller's scratch buffer.
/// The last name is never "." or "..": on the parent fd "..", would name the parent's parent, which for a
/// top-level name is outside the export. The walker never sends them; refusing here keeps that true by construction.
/// <para>
/// A path longer than the kernel's PATH_MAX (a guest reaches one with short relative paths in a deep tree) is
/// accepted up to <see cref="MaxLongPathLength"/> and resolved in chunks (LocalFileSystem.ResolveLong). Such a path
/// must consist of plain names: no "." or ".." anywhere (EINVAL), no name above NAME_MAX (ENAMETOOLONG). The
/// server's paths are built only from names that passed PathNames.Check and never hold either, so this refuses
/// nothing the guest can send; it is checked rather than assumed because a chunk resolved with RESOLVE_BENEATH
/// would refuse a ".." at its start that the whole path allows, and cleaning ".." lexically would be wrong
/// through a symlink.
/// </para>
/// </summary>
internal readonly ref struct LocalPath
{
    /// <summary>Longest path a syscall takes: PATH_MAX (linux/limits.h) minus the NUL.</summary>
    public const int MaxPathLength = 4095;

    /// <summary>Longest export-relative path served at all (ENAMETOOLONG beyond): the helper mode's cap
    /// (<see cref="ProxyLimits.MaxPathLength"/>), so both modes answer the same depth. The session's path-bytes
    /// budget bounds what all fids hold together; this bounds one request's scratch and chunk count.</summary>
    public const int MaxLongPathLength = ProxyLimits.MaxPathLength;

    /// <summary>NAME_MAX (linux/limits.h).</summary>
    public const int MaxNameLength = 255;

    /// <summary>Scratch needed by <see cref="Parse"/> for a path of at most <see cref="MaxPathLength"/>: three
    /// NUL-terminated copies of at most a path each. Longer paths need <see cref="ScratchSizeFor"/>.</summary>
    public const int ScratchSize = 3 * (MaxPathLength + 2);

    /// <summary>Scratch <see cref="Parse"/> needs for a path of <paramref name="pathLength"/> bytes.</summary>
    public static int ScratchSizeFor(int pathLength) => 3 * (Math.Max(pathLength, MaxPathLength) + 2);

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
    /// <see cref="MaxLongPathLength"/> or NAME_MAX, EINVAL for an embedded NUL (it would cut the C string), a
    /// relative path, a last name of "." or "..", or any "." or ".." in a path above PATH_MAX.
    /// <paramref name="scratch"/> must hold <see cref="ScratchSizeFor"/> the path's length (<see cref="Scratch"/>).</summary>
    public static int Parse(ReadOnlySpan<byte> path, Span<byte> scratch, out LocalPath result)
    {
        result = default;
        if (path.IsEmpty) return -Errno.ENOENT;
        if (path.Length > MaxLongPathLength) return -Errno.ENAMETOOLONG;
        if (path.IndexOf((byte)0) >= 0 || path[0] != (byte)'/') return -Errno.EINVAL;
        int part = ScratchSizeFor(path.Length) / 3;
        if (scratch.Length < 3 * part) throw new ArgumentException("scratch too small", nameof(scratch));

        ReadOnlySpan<byte> trimmed = path.TrimEnd((byte)'/').TrimStart((byte)'/');
        if (path.Length > MaxPathLength)
        {
            int r = CheckLongPathNames(trimmed);
            if (r < 0) return r;
        }
        Span<byte> parentBuf = scratch[..part];
        Span<byte> nameBuf = scratch.Slice(part, part);
        Span<byte> relBuf = scratch.Slice(2 * part, part);
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

    /// <summary>Every name of a long path is a plain name of at most NAME_MAX (see the class comment): checked
    /// before anything is resolved, so the answer does not depend on how far resolution gets. Empty elements
    /// ("a//b") are harmless (the kernel skips them) and pass.</summary>
    private static int CheckLongPathNames(ReadOnlySpan<byte> relative)
    {
        while (!relative.IsEmpty)
        {
            int slash = relative.IndexOf((byte)'/');
            ReadOnlySpan<byte> name = slash < 0 ? relative : relative[..slash];
            relative = slash < 0 ? default : relative[(slash + 1)..];
            if (name.Length > MaxNameLength) return -Errno.ENAMETOOLONG;
            if (name.SequenceEqual("."u8) || name.SequenceEqual(".."u8)) return -Errno.EINVAL;
        }
        return 0;
    }

    /// <summary>
    /// The scratch for one <see cref="Parse"/>: the caller's stack buffer of <see cref="ScratchSize"/> for a path up
    /// to PATH_MAX, so the common case allocates nothing; a pooled array for a longer one, returned by Dispose.
    /// <code>
    /// Span&lt;byte&gt; stack = stackalloc byte[LocalPath.ScratchSize];
    /// using LocalPath.Scratch scratch = new(stack, path.Length);
    /// int r = LocalPath.Parse(path, scratch.Span, out LocalPath p);
    /// </code>
    /// </summary>
    public ref struct Scratch
    {
        private byte[]? _rented;

        public Scratch(Span<byte> stack, int pathLength)
        {
            int size = ScratchSizeFor(Math.Min(pathLength, MaxLongPathLength)); // Parse refuses longer before using it
            if (size <= stack.Length)
            {
                Span = stack;
                _rented = null;
            }
            else
            {
                _rented = ArrayPool<byte>.Shared.Rent(size);
                Span = _rented;
            }
        }

        public Span<byte> Span { get; }

        public void Dispose()
        {
            if (_rented is null) return;
            ArrayPool<byte>.Shared.Return(_rented);
            _rented = null;
        }
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

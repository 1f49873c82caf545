namespace VirtFs.Virtio9p.Server;

/// <summary>
/// Export-relative paths as the server keeps them: "/" for the root, "/a/b" below it. Built only from
/// names that passed <see cref="Check"/>, so a path never holds "..", "." or an empty element and cannot
/// leave the export even before the helper's chroot.
/// </summary>
internal static class PathNames
{
    public static readonly byte[] Root = "/"u8.ToArray();

    public static bool IsRoot(ReadOnlySpan<byte> path) => path.Length == 1 && path[0] == (byte)'/';

    public static bool IsDot(ReadOnlySpan<byte> name) => name.Length == 1 && name[0] == (byte)'.';

    public static bool IsDotDot(ReadOnlySpan<byte> name) => name.Length == 2 && name[0] == (byte)'.' && name[1] == (byte)'.';

    /// <summary>A name the guest may use for a directory entry: QEMU's name_is_illegal (empty or
    /// containing '/') plus NUL, which no C path can carry, and NAME_MAX.</summary>
    public static int Check(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty || name.IndexOfAny((byte)'/', (byte)0) >= 0)
        {
            return -Errno.EINVAL;
        }
        return name.Length > Protocol.P9Limits.MaxNameLength ? -Errno.ENAMETOOLONG : 0;
    }

    public static byte[] Join(ReadOnlySpan<byte> directory, ReadOnlySpan<byte> name)
    {
        bool root = IsRoot(directory);
        byte[] path = new byte[(root ? 1 : directory.Length + 1) + name.Length];
        if (root)
        {
            path[0] = (byte)'/';
            name.CopyTo(path.AsSpan(1));
        }
        else
        {
            directory.CopyTo(path);
            path[directory.Length] = (byte)'/';
            name.CopyTo(path.AsSpan(directory.Length + 1));
        }
        return path;
    }

    /// <summary>The parent of a path; the root's parent is the root (9P: ".." at the root stays there).</summary>
    public static byte[] Parent(byte[] path)
    {
        int slash = path.AsSpan().LastIndexOf((byte)'/');
        return slash <= 0 ? Root : path.AsSpan(0, slash).ToArray();
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="prefix"/> or lies below it.</summary>
    public static bool IsAtOrBelow(ReadOnlySpan<byte> path, ReadOnlySpan<byte> prefix)
    {
        if (IsRoot(prefix))
        {
            return true;
        }
        return path.StartsWith(prefix) && (path.Length == prefix.Length || path[prefix.Length] == (byte)'/');
    }
}

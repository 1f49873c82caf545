namespace VirtFs.Helper;

/// <summary>
/// Which extended attributes the helper reads and writes for its client. Attack stopped: the backend could set
/// security.selinux (and any other security.* label the helper's capabilities allow) on export files, labels
/// the host's security modules act on. By default only what a guest's files need: user.* and the two POSIX ACL
/// names. An administrator who wants labels passed through names the prefix (--allow-xattr security.).
/// Refused names look absent: get and remove say ENODATA, set says EOPNOTSUPP (as a filesystem without that
/// namespace), and list leaves them out.
/// </summary>
internal sealed class XattrPolicy
{
    private static readonly byte[][] s_defaultPrefixes = ["user."u8.ToArray()];
    private static readonly byte[][] s_defaultNames =
        ["system.posix_acl_access"u8.ToArray(), "system.posix_acl_default"u8.ToArray()];

    private readonly byte[][] _prefixes;

    public XattrPolicy(IEnumerable<string> extraPrefixes)
    {
        _prefixes = [.. s_defaultPrefixes, .. extraPrefixes.Select(p => System.Text.Encoding.UTF8.GetBytes(p))];
    }

    public static XattrPolicy Default { get; } = new([]);

    /// <summary>Whether <paramref name="name"/> (no NUL) may be read or written.</summary>
    public bool Allows(ReadOnlySpan<byte> name)
    {
        foreach (byte[] n in s_defaultNames)
        {
            if (name.SequenceEqual(n)) return true;
        }
        foreach (byte[] prefix in _prefixes)
        {
            if (prefix.Length > 0 && name.Length > prefix.Length && name.StartsWith(prefix)) return true;
        }
        return false;
    }

    /// <summary>Keeps only allowed names in a listxattr(2) result (names each followed by NUL), in place.
    /// Returns the new length.</summary>
    public int FilterList(Span<byte> list)
    {
        int write = 0, read = 0;
        while (read < list.Length)
        {
            int end = list[read..].IndexOf((byte)0);
            int length = end < 0 ? list.Length - read : end + 1; // with its NUL
            ReadOnlySpan<byte> name = list.Slice(read, end < 0 ? length : end);
            if (Allows(name))
            {
                list.Slice(read, length).CopyTo(list[write..]);
                write += length;
            }
            read += length;
        }
        return write;
    }
}

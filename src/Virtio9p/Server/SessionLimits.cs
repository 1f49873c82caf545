namespace VirtFs.Virtio9p.Server;

/// <summary>
/// What one 9P session may hold on the host (issue 13, item 1). Every figure is far above what the Linux client
/// uses (the posix suite's 10 000-entry directory, a cache=loose client keeping a fid per cached dentry, a build
/// with thousands of open files) and far below what would hurt the host. Past a limit the request that asked for
/// more answers an errno and the session carries on; see docs/security.md, "Per-session budget".
/// </summary>
public sealed class SessionLimits
{
    public const int DefaultMaxFids = 262_144;
    public const int DefaultMaxOpenFiles = 16_384;
    public const long DefaultMaxXattrBytes = 16L << 20;
    public const long DefaultMaxPathBytes = 64L << 20;
    public const int DefaultMaxQidOverflowEntries = 1 << 20;

    /// <summary>Fids in the table (EMFILE past it). About 200 bytes each plus the path.</summary>
    public int MaxFids { get; init; } = DefaultMaxFids;

    /// <summary>Host files the session holds open through its fids (EMFILE past it, as open(2) at RLIMIT_NOFILE).</summary>
    public int MaxOpenFiles { get; init; } = DefaultMaxOpenFiles;

    /// <summary>Bytes of xattr values held for Txattrcreate (until Tclunk) and Txattrwalk (until the fid goes),
    /// all fids together (ENOMEM past it). Each value is at most 64 KiB (XATTR_SIZE_MAX).</summary>
    public long MaxXattrBytes { get; init; } = DefaultMaxXattrBytes;

    /// <summary>Bytes of the export-relative paths all fids name together (ENOMEM past it).</summary>
    public long MaxPathBytes { get; init; } = DefaultMaxPathBytes;

    /// <summary>qid.path numbers handed out from the overflow range (inodes above 2^48, or a 32 769th host
    /// device), which must stay stable for the session (ENFILE past it, as QEMU when its remap space runs out).</summary>
    public int MaxQidOverflowEntries { get; init; } = DefaultMaxQidOverflowEntries;
}

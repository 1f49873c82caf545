using Microsoft.Extensions.Logging;
using Tmds.Linux;
using VirtFs.Virtio9p.FileSystem;

namespace VirtFs.Virtio9p;

/// <summary>Rootless mode (--shared-dir): the backend serves a directory itself, as the unprivileged user that owns
/// it, confined to it by <see cref="LocalFileSystem"/> (openat2 RESOLVE_IN_ROOT on every lookup).</summary>
internal static class SharedDirectory
{
    public static LocalFileSystem Open(BackendOptions options) =>
        new(Path.GetFullPath(options.SharedDir!), options.SecurityModel);

    /// <summary>One line on what is served and how; a warning when the directory is not ours, since mapped-xattr
    /// keeps the guest's attributes in xattrs only the owner (or a writer) may set.</summary>
    public static void Describe(BackendOptions options, ILogger logger)
    {
        string model = options.SecurityModel == SecurityModel.MappedXattr ? "mapped-xattr" : "none";
        logger.LogInformation("rootless: serving {Dir} as uid {Uid}, security model {Model}, no helper",
            options.SharedDir, LibC.geteuid(), model);
        var info = new UnixFileInfo(options.SharedDir!);
        if (info.OwnerUid is { } owner && owner != LibC.geteuid())
        {
            logger.LogWarning("{Dir} belongs to uid {Owner}, not to this process (uid {Uid}): the guest may find it read-only",
                options.SharedDir, owner, LibC.geteuid());
        }
    }

    /// <summary>The owner of a path (stat), or null when it cannot be stat'ed.</summary>
    private readonly unsafe struct UnixFileInfo
    {
        public UnixFileInfo(string path)
        {
            byte[] z = new byte[System.Text.Encoding.UTF8.GetByteCount(path) + 1];
            System.Text.Encoding.UTF8.GetBytes(path, z);
            stat st;
            fixed (byte* p = z)
            {
                // SAFETY: pinned and NUL-terminated (the array is one longer than the text); stack struct.
                OwnerUid = LibC.stat(p, &st) == 0 ? st.st_uid : null;
            }
        }

        public uint? OwnerUid { get; }
    }
}

namespace VirtFs.Virtio9p.FileSystem;

/// <summary>
/// How guest ownership, modes and file types are kept on the host (QEMU's -virtfs security_model values).
/// </summary>
public enum SecurityModel
{
    /// <summary>Guest owners and modes are the host's. Needs a privileged server: the root helper's mode
    /// (also what <see cref="LocalFileSystem"/> does for tests, chowning only when it runs as root).</summary>
    Passthrough,

    /// <summary>QEMU's mapped-xattr: every host object belongs to the serving user with a safe mode (files 0600,
    /// directories 0700); the guest's uid, gid, mode and rdev live in user.virtfs.* xattrs; device nodes, fifos and
    /// sockets are regular files, symlinks are regular files holding the target; user.virtfs.* is hidden.</summary>
    MappedXattr,

    /// <summary>QEMU's none: objects are real (fifos, symlinks, modes), owned by the serving user; failures to give
    /// a new object the guest's owner are ignored, an explicit chown is tried and its error returned.</summary>
    None,
}

namespace VirtFs.Virtio9p.Server;

/// <summary>
/// 9P2000.L open flags (include/net/9p/9p.h P9_DOTL_*) to host open(2) flags. They coincide with x86-64
/// Linux values except SYNC, but we translate bit by bit so a guest of another architecture, or a hostile
/// one, cannot smuggle flags we did not choose to pass.
/// </summary>
internal static class OpenFlags
{
    private const uint DotlAccessMask = 3, DotlCreate = 0x40, DotlExcl = 0x80, DotlTrunc = 0x200,
        DotlAppend = 0x400, DotlNonblock = 0x800, DotlDsync = 0x1000, DotlDirectory = 0x10000,
        DotlSync = 0x100000;

    public const int ORdOnly = 0, OWrOnly = 1, ORdWr = 2, OCreat = 0x40, OExcl = 0x80, OTrunc = 0x200,
        OAppend = 0x400, ONonblock = 0x800, ODsync = 0x1000, ODirectory = 0x10000, ONofollow = 0x20000,
        OSync = 0x101000;

    /// <summary>
    /// Dropped on purpose, as QEMU's get_dotl_openflags does: CREATE (only Tlcreate creates), NOCTTY,
    /// FASYNC (no signals across the device), DIRECT (guest buffers are not aligned for the host device,
    /// and the page cache is the host's business), NOATIME, CLOEXEC, LARGEFILE. NOFOLLOW is always
    /// added: the walker resolved the path already, and a symlink is never what Tlopen means.
    /// </summary>
    public static int ToHost(uint flags)
    {
        uint access = flags & DotlAccessMask;
        int host = access switch { 1 => OWrOnly, 2 => ORdWr, _ => ORdOnly };
        if ((flags & DotlExcl) != 0) host |= OExcl;
        if ((flags & DotlTrunc) != 0) host |= OTrunc;
        if ((flags & DotlAppend) != 0) host |= OAppend;
        if ((flags & DotlNonblock) != 0) host |= ONonblock;
        if ((flags & DotlDsync) != 0) host |= ODsync;
        if ((flags & DotlDirectory) != 0) host |= ODirectory;
        if ((flags & DotlSync) != 0) host |= OSync;
        return host | ONofollow;
    }

    public static bool CanWrite(int hostFlags) => (hostFlags & 3) is OWrOnly or ORdWr;
}

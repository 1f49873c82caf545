using VirtFs.ProxyFs.Protocol;
using static Tmds.Linux.LibC;

namespace VirtFs.Helper;

/// <summary>
/// -r/--readonly: the helper refuses every request that would change the export with EROFS, whatever its client
/// asks (QEMU's readonly=on and virtiofsd's --readonly in one place the backend cannot bypass: a backend taken over
/// by a guest still talks to this helper). Open asking for write access or truncation counts as a change, so no
/// writable fd ever leaves the helper.
/// </summary>
internal static class ReadOnlyExport
{
    /// <summary>Set once from the command line, before any connection.</summary>
    public static bool Enabled { get; set; }

    /// <summary>Whether <paramref name="type"/> would change the export; for T_OPEN the caller passes its flags.</summary>
    public static bool Refuses(ProxyRequestType type, int openFlags) => Enabled && type switch
    {
        ProxyRequestType.Open => (openFlags & O_ACCMODE) != O_RDONLY || (openFlags & (O_TRUNC | O_CREAT)) != 0,
        ProxyRequestType.Create or ProxyRequestType.Mknod or ProxyRequestType.Mkdir or ProxyRequestType.Symlink or
        ProxyRequestType.Link or ProxyRequestType.Rename or ProxyRequestType.Chmod or ProxyRequestType.Chown or
        ProxyRequestType.Truncate or ProxyRequestType.Utime or ProxyRequestType.Remove or
        ProxyRequestType.RemoveXattr or ProxyRequestType.SetXattr => true,
        _ => false,
    };
}

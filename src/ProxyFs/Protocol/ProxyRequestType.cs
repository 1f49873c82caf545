namespace VirtFs.ProxyFs.Protocol;

/// <summary>
/// Message types of QEMU 7.2's proxy-FS protocol, in the order of the enum in
/// hw/9pfs/9p-proxy.h (the numeric values travel on the wire, so the order is the contract).
/// T_SUCCESS and T_ERROR are reply types; the rest are requests.
/// </summary>
public enum ProxyRequestType : uint
{
    Success = 0,
    Error = 1,
    Open = 2,
    Create = 3,
    Mknod = 4,
    Mkdir = 5,
    Symlink = 6,
    Link = 7,
    Lstat = 8,
    Readlink = 9,
    Statfs = 10,
    Chmod = 11,
    Chown = 12,
    Truncate = 13,
    Utime = 14,
    Rename = 15,
    Remove = 16,
    GetXattr = 17,
    ListXattr = 18,
    SetXattr = 19,
    RemoveXattr = 20,
    GetVersion = 21,
}

public static class ProxyRequestTypes
{
    public static bool IsRequest(uint type) => type >= (uint)ProxyRequestType.Open && type <= (uint)ProxyRequestType.GetVersion;
}

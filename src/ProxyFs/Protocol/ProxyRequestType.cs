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

/// <summary>How the peer answers a request (9p-proxy.c v9fs_request's second switch).</summary>
public enum ProxyReplyKind
{
    /// <summary>One raw host-endian int (no header): a negative errno, or V9FS_FD_VALID with the fd as SCM_RIGHTS.</summary>
    Fd,
    /// <summary>Header + one int: T_SUCCESS/T_ERROR with the status (send_status).</summary>
    Status,
    /// <summary>Header + payload on T_SUCCESS, header + negative errno on T_ERROR (send_response).</summary>
    Response,
}

public static class ProxyRequestTypes
{
    public static bool IsRequest(uint type) => type >= (uint)ProxyRequestType.Open && type <= (uint)ProxyRequestType.GetVersion;

    /// <summary>Reply shape per type. Getxattr/listxattr with size 0 answer as a status (the size) on the wire,
    /// but framed like a response; both shapes are "header + body" so the caller decides by the size it sent.</summary>
    public static ProxyReplyKind ReplyKind(ProxyRequestType type) => type switch
    {
        ProxyRequestType.Open or ProxyRequestType.Create => ProxyReplyKind.Fd,
        ProxyRequestType.Lstat or ProxyRequestType.Statfs or ProxyRequestType.Readlink
            or ProxyRequestType.GetXattr or ProxyRequestType.ListXattr or ProxyRequestType.GetVersion => ProxyReplyKind.Response,
        _ => ProxyReplyKind.Status,
    };
}

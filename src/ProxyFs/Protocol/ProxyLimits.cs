namespace VirtFs.ProxyFs.Protocol;

/// <summary>Wire limits, each with its reason.</summary>
public static class ProxyLimits
{
    /// <summary>PROXY_MAX_IO_SZ (hw/9pfs/9p-proxy.h): both QEMU peers keep one buffer of this size plus the
    /// header; a body above it is a fatal error for the helper (read_request) and ENOBUFS for replies.</summary>
    public const int MaxBodySize = 64 * 1024;

    /// <summary>sizeof(ProxyHeader): u32 type, u32 size, host-endian.</summary>
    public const int HeaderSize = 8;

    /// <summary>Largest whole message either side ever sends or accepts.</summary>
    public const int MaxMessageSize = HeaderSize + MaxBodySize;

    /// <summary>Strings are "s" in fsdev/9p-iov-marshal.c: a u16 length then the bytes (no NUL).</summary>
    public const int MaxStringLength = ushort.MaxValue;

    /// <summary>Largest payload of an "s" reply: it must fit in a body (u16 length + bytes &lt;= MaxBodySize).</summary>
    public const int MaxReplyStringLength = MaxBodySize - 2;

    /// <summary>Longest path we send. Longer than the kernel's PATH_MAX (4095 before the NUL) on purpose: a deep
    /// guest directory has export-relative paths past it, and our helper enters such paths in chunks
    /// (src/Helper/LongPaths.cs; QEMU 7.2's helper answers ENAMETOOLONG). 16 KiB keeps the two paths of a
    /// rename well inside a body.</summary>
    public const int MaxPathLength = 16383;

    /// <summary>V9FS_FD_VALID (INT_MAX): the int sent with an SCM_RIGHTS fd in open/create replies.</summary>
    public const int FdValid = int.MaxValue;

    /// <summary>A correct reply carries exactly one fd; room for a few more lets us see (and close) extras
    /// instead of having the kernel silently drop them.</summary>
    public const int MaxReceivedFds = 4;

    /// <summary>Linux errno values are 1..4095 (MAX_ERRNO); anything else in an error reply is malformed.</summary>
    public const int MaxErrno = 4095;

    /// <summary>Size of the ProxyStat wire record "qqqdddqqqqqqqqqq".</summary>
    public const int StatSize = 3 * 8 + 3 * 4 + 10 * 8;

    /// <summary>Size of the ProxyStatFS wire record "qqqqqqqqqqq".</summary>
    public const int StatFsSize = 11 * 8;
}

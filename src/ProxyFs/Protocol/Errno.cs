namespace VirtFs.ProxyFs.Protocol;

/// <summary>
/// The one table of Linux errno values (asm-generic/errno-base.h, errno.h, x86_64) that our code produces or
/// compares itself: what Rlerror carries, what the helper answers, what the proxy client reports. It lives here,
/// in the assembly both executables and every test project reference, so there is no second copy to drift.
/// Tmds.LibC's values are properties, not constants, and cannot stand in a switch or a constant expression.
/// </summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int E2BIG = 7;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ENOTTY = 25;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int ERANGE = 34;
    public const int ENAMETOOLONG = 36;
    public const int ENOLCK = 37;
    public const int ENOSYS = 38;
    public const int ENOTEMPTY = 39;
    public const int ELOOP = 40;
    public const int ENODATA = 61;
    public const int EPROTO = 71;
    public const int EMSGSIZE = 90;
    public const int EOPNOTSUPP = 95;
    public const int ENOBUFS = 105;
}

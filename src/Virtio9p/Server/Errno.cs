namespace VirtFs.Virtio9p.Server;

/// <summary>Linux errno values (asm-generic/errno-base.h, errno.h): what Rlerror carries.</summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EIO = 5, E2BIG = 7, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EBUSY = 16, EEXIST = 17, EXDEV = 18, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, EFBIG = 27, ENOSPC = 28, ERANGE = 34,
        ENAMETOOLONG = 36, ENOLCK = 37, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENODATA = 61, EPROTO = 71, EMSGSIZE = 90,
        EOPNOTSUPP = 95, ENOBUFS = 105, EROFS = 30;
}

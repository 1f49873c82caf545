using Microsoft.Win32.SafeHandles;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>Owns one file descriptor (received over SCM_RIGHTS or created by us); closes it on release.</summary>
internal sealed class FdHandle : SafeHandleMinusOneIsInvalid
{
    public FdHandle(int fd)
        : base(ownsHandle: true)
    {
        SetHandle(fd);
    }

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => close((int)handle) == 0;
}

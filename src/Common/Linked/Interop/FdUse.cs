using System.Runtime.InteropServices;

namespace VirtFs.Interop;

/// <summary>
/// Borrows the raw fd of a SafeHandle for a Tmds.LibC call, which takes ints. The AddRef keeps a concurrent
/// close (a Tclunk, an evicting thread) from closing the fd, and the kernel from reusing its number for another
/// file, while the call runs: the use-after-free class of CVE-2021-20181.
/// </summary>
internal readonly ref struct FdUse
{
    private readonly SafeHandle _handle;
    private readonly bool _added;

    public FdUse(SafeHandle handle)
    {
        _handle = handle;
        _added = false;
        handle.DangerousAddRef(ref _added);
        Fd = (int)handle.DangerousGetHandle();
    }

    public int Fd { get; }

    public void Dispose()
    {
        if (_added)
        {
            _handle.DangerousRelease();
        }
    }
}

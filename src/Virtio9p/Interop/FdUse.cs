using Microsoft.Win32.SafeHandles;

namespace VirtFs.Virtio9p.Interop;

/// <summary>
/// Borrows the raw fd of a SafeFileHandle for a Tmds.LibC call. The AddRef keeps a concurrent Tclunk from
/// closing the fd (and the kernel from reusing its number for another file) while the call runs: the
/// use-after-free class of CVE-2021-20181.
/// </summary>
internal readonly ref struct FdUse
{
    private readonly SafeFileHandle _handle;
    private readonly bool _added;

    public FdUse(SafeFileHandle handle)
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

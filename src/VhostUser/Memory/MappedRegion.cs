using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>
/// One guest memory region mapped MAP_SHARED from the fd the front-end sent (vhost-user.rst, "Memory regions").
/// The handle is the base of the whole mapping (from file offset 0, so the offset need not be page aligned);
/// guest bytes start at <see cref="HostAddress"/> = base + mmap_offset. munmap happens when the last
/// SafeHandle reference (a <see cref="GuestMemory"/> snapshot) is released.
/// </summary>
internal sealed class MappedRegion : SafeHandleZeroOrMinusOneIsInvalid
{
    private readonly nuint _mappingLength;

    public ulong GuestPhysAddr { get; }
    public ulong Size { get; }
    public ulong UserAddr { get; }
    public ulong MmapOffset { get; }
    /// <summary>Start of guest bytes in our address space.</summary>
    public nint HostAddress { get; }
    /// <summary>
    /// Whether the file carries F_SEAL_SHRINK, so nobody can truncate it under our mapping. Without the seal
    /// a front-end that shrinks the file later makes our next access to the lost pages raise SIGBUS, which
    /// ends the process: the size check at map time is all a backend can do (rust-vmm's vm-memory refuses a
    /// mapping past EOF the same way; libvhost-user checks nothing). Only the front-end holds the fd, never the
    /// guest, and a front-end can end us anyway by closing the socket, so this is logged, not refused: QEMU's
    /// memory-backend-memfd seals by default (seal=on), memory-backend-file (/dev/shm, hugetlbfs) cannot.
    /// </summary>
    public bool SealedAgainstShrinking { get; }

    private MappedRegion(nint mappingBase, nuint mappingLength, in MemoryRegionDescription d, bool sealedAgainstShrinking)
        : base(ownsHandle: true)
    {
        SetHandle(mappingBase);
        _mappingLength = mappingLength;
        GuestPhysAddr = d.GuestPhysAddr;
        Size = d.MemorySize;
        UserAddr = d.UserAddr;
        MmapOffset = d.MmapOffset;
        HostAddress = mappingBase + (nint)d.MmapOffset;
        SealedAgainstShrinking = sealedAgainstShrinking;
    }

    /// <summary>Maps <paramref name="fd"/>; the fd itself stays owned by the caller (close it after).</summary>
    public static unsafe MappedRegion Map(SafeHandle fd, in MemoryRegionDescription d)
    {
        if (!d.IsValid())
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidMemoryRegion, $"invalid region {d}");
        }
        ulong total = d.MmapOffset + d.MemorySize; // IsValid checked this does not overflow
        if (total > (ulong)nint.MaxValue)
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidMemoryRegion, $"region too large {d}");
        }
        bool added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            int raw = (int)fd.DangerousGetHandle();
            // A mapping past the end of the file would SIGBUS on access: refuse it up front.
            long end = lseek(raw, 0, SEEK_END);
            if (end < 0 || (ulong)end < total)
            {
                throw new VhostUserProtocolException(VhostUserError.InvalidMemoryRegion,
                    $"region {d} extends past its file (size {end}, errno {errno})");
            }
            int seals = fcntl(raw, F_GET_SEALS); // -1 (EINVAL) for files that cannot be sealed
            bool shrinkSealed = seals >= 0 && (seals & F_SEAL_SHRINK) != 0;
            // SAFETY: we ask the kernel for a fresh mapping (no MAP_FIXED), so no existing memory is replaced.
            void* p = mmap(null, (size_t)total, PROT_READ | PROT_WRITE, MAP_SHARED, raw, 0);
            if (p == MAP_FAILED)
            {
                throw new VhostUserProtocolException(VhostUserError.MapFailed, $"mmap of region {d} failed: errno {errno}");
            }
            return new MappedRegion((nint)p, (nuint)total, d, shrinkSealed);
        }
        finally
        {
            if (added)
            {
                fd.DangerousRelease();
            }
        }
    }

    /// <summary>True if this region was described by exactly <paramref name="d"/> (REM_MEM_REG matching).</summary>
    public bool Matches(in MemoryRegionDescription d) =>
        d.GuestPhysAddr == GuestPhysAddr && d.MemorySize == Size && d.UserAddr == UserAddr;

    protected override unsafe bool ReleaseHandle()
    {
        // SAFETY: handle/_mappingLength are exactly what mmap returned; SafeHandle guarantees no other user remains.
        return munmap((void*)handle, (size_t)(ulong)_mappingLength) == 0;
    }
}

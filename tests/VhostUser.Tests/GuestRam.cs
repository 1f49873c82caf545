using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests;

/// <summary>A memfd standing in for guest RAM, mapped into the test (the "driver" side) as well.</summary>
internal sealed unsafe class GuestRam : IDisposable
{
    public GuestRam(ulong size, ulong guestPhysAddr, ulong userAddr, long fileSize = -1, string name = "gram")
    {
        byte[] nameBytes = System.Text.Encoding.ASCII.GetBytes(name + "\0");
        fixed (byte* namePointer = nameBytes)
        {
            Fd = memfd_create(namePointer, MFD_CLOEXEC);
        }
        Name = name;
        Assert.True(Fd >= 0);
        Assert.Equal(0, ftruncate(Fd, fileSize < 0 ? (long)size : fileSize));
        Size = size;
        GuestPhysAddr = guestPhysAddr;
        UserAddr = userAddr;
        if (fileSize < 0)
        {
            void* p = mmap(null, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, Fd, 0);
            Assert.True(p != MAP_FAILED);
            Pointer = (byte*)p;
        }
    }

    public int Fd { get; }
    /// <summary>The memfd's name: /proc/self/maps and /proc/self/fd show it as "/memfd:NAME (deleted)".</summary>
    public string Name { get; }
    public byte* Pointer { get; }
    public ulong Size { get; }
    public ulong GuestPhysAddr { get; }
    public ulong UserAddr { get; }

    public MemoryRegionDescription Description => new(GuestPhysAddr, Size, UserAddr, 0);

    public SafeHandle BorrowFd() => new SafeFileHandle(Fd, ownsHandle: false);

    public byte* At(ulong gpa)
    {
        Assert.InRange(gpa, GuestPhysAddr, GuestPhysAddr + Size - 1);
        return Pointer + (gpa - GuestPhysAddr);
    }

    public Span<byte> Span(ulong gpa, int length) => new(At(gpa), length);

    public ulong UserOf(ulong gpa) => UserAddr + (gpa - GuestPhysAddr);

    public GuestMemory MapForBackend() => MapAll(this);

    public static GuestMemory MapAll(params GuestRam[] rams)
    {
        var regions = rams.Select(r => MappedRegion.Map(r.BorrowFd(), r.Description)).ToList();
        var memory = new GuestMemory(regions);
        regions.ForEach(r => r.Dispose()); // the snapshot keeps them mapped
        return memory;
    }

    public void Dispose()
    {
        if (Pointer != null)
        {
            munmap(Pointer, (size_t)Size);
        }
        close(Fd);
    }
}

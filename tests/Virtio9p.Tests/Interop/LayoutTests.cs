using System.Runtime.InteropServices;
using VirtFs.Interop;

namespace VirtFs.Virtio9p.Tests.Interop;

/// <summary>The C structs of the shared syscall layer (src/Common/Linked/Interop) the backend compiles, laid out
/// as linux/capability.h has them (struct statfs: LocalFileSystemTests).</summary>
public sealed class LayoutTests
{
    [Fact]
    public void CapHeader_and_CapData_match_linux_capability_h()
    {
        Assert.Equal(8, Marshal.SizeOf<CapHeader>());
        Assert.Equal(4, (int)Marshal.OffsetOf<CapHeader>(nameof(CapHeader.Pid)));
        Assert.Equal(12, Marshal.SizeOf<CapData>());
        Assert.Equal(0, (int)Marshal.OffsetOf<CapData>(nameof(CapData.Effective)));
        Assert.Equal(4, (int)Marshal.OffsetOf<CapData>(nameof(CapData.Permitted)));
        Assert.Equal(8, (int)Marshal.OffsetOf<CapData>(nameof(CapData.Inheritable)));
        Assert.Equal(0x20080522u, CapHeader.Version3);
    }

    /// <summary>capget through the shared layer reads this process's sets: the same words /proc/self/status shows.</summary>
    [Fact]
    public unsafe void Capget_reads_what_proc_status_shows()
    {
        CapHeader header = new() { Version = CapHeader.Version3 };
        CapData* data = stackalloc CapData[2];
        Assert.Equal(0, Sys.Capget(&header, data));
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        ulong eff = Convert.ToUInt64(line[7..].Trim(), 16);
        Assert.Equal(eff, ((ulong)data[1].Effective << 32) | data[0].Effective);
    }
}

using System.Runtime.InteropServices;
using VirtFs.Helper.Interop;
using VirtFs.Interop;

namespace VirtFs.Helper.Tests;

/// <summary>The C structs the root helper mirrors, as the helper compiles them (the shared layer's files are
/// compiled into each assembly, so this checks the helper's copy).</summary>
public sealed class HelperLayoutTests
{
    /// <summary>struct statfs, x86_64 (asm-generic/statfs.h, 64-bit words).</summary>
    [Fact]
    public void StatFs_matches_C()
    {
        Assert.Equal(120, Marshal.SizeOf<StatFs>());
        Assert.Equal(8, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_bsize)));
        Assert.Equal(56, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_fsid0)));
        Assert.Equal(60, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_fsid1)));
        Assert.Equal(64, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_namelen)));
        Assert.Equal(80, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_flags)));
    }

    /// <summary>struct mount_attr (linux/mount.h, MOUNT_ATTR_SIZE_VER0 = 32).</summary>
    [Fact]
    public void MountAttr_matches_C()
    {
        Assert.Equal(32, Marshal.SizeOf<MountApi.MountAttr>());
        Assert.Equal(8, (int)Marshal.OffsetOf<MountApi.MountAttr>(nameof(MountApi.MountAttr.AttrClr)));
        Assert.Equal(16, (int)Marshal.OffsetOf<MountApi.MountAttr>(nameof(MountApi.MountAttr.Propagation)));
        Assert.Equal(24, (int)Marshal.OffsetOf<MountApi.MountAttr>(nameof(MountApi.MountAttr.UsernsFd)));
    }

    /// <summary>struct ucred (SO_PEERCRED) and struct timeval (SO_SNDTIMEO), x86_64.</summary>
    [Fact]
    public void UCred_and_TimeVal_match_C()
    {
        Assert.Equal(12, Marshal.SizeOf<SocketOptions.UCred>());
        Assert.Equal(4, (int)Marshal.OffsetOf<SocketOptions.UCred>(nameof(SocketOptions.UCred.Uid)));
        Assert.Equal(8, (int)Marshal.OffsetOf<SocketOptions.UCred>(nameof(SocketOptions.UCred.Gid)));
        Assert.Equal(16, Marshal.SizeOf<SocketOptions.TimeVal>());
        Assert.Equal(8, (int)Marshal.OffsetOf<SocketOptions.TimeVal>(nameof(SocketOptions.TimeVal.Microseconds)));
    }

    [Fact]
    public void CapHeader_and_CapData_match_C()
    {
        Assert.Equal(8, Marshal.SizeOf<CapHeader>());
        Assert.Equal(12, Marshal.SizeOf<CapData>());
        Assert.Equal(8, (int)Marshal.OffsetOf<CapData>(nameof(CapData.Inheritable)));
    }
}

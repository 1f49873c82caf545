using VirtFs.Virtio9p.Server;

namespace VirtFs.Virtio9p.Tests.Server;

public class OpenFlagsTests
{
    [Fact]
    public void Direct_create_and_cloexec_are_dropped_nofollow_added()
    {
        const uint dotlRdwr = 2, dotlCreate = 0x40, dotlDirect = 0x4000, dotlCloexec = 0x80000;
        int host = OpenFlags.ToHost(dotlRdwr | dotlCreate | dotlDirect | dotlCloexec);
        Assert.Equal(OpenFlags.ORdWr | OpenFlags.ONofollow, host);
    }

    [Fact]
    public void Sync_maps_to_linux_o_sync()
    {
        Assert.Equal(OpenFlags.OSync | OpenFlags.ONofollow, OpenFlags.ToHost(0x100000));
    }

    [Fact]
    public void Trunc_append_excl_survive()
    {
        int host = OpenFlags.ToHost(1 | 0x80 | 0x200 | 0x400);
        Assert.Equal(OpenFlags.OWrOnly | OpenFlags.OExcl | OpenFlags.OTrunc | OpenFlags.OAppend | OpenFlags.ONofollow, host);
    }
}

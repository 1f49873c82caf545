using System.Diagnostics;
using System.Text;
using Tmds.Linux;

namespace VirtFs.ProxyFs.Tests;

/// <summary>
/// Our ProxyClient against QEMU 7.2's own virtfs-proxy-helper (Debian bookworm, package qemu-system-common:
/// `apt-get download qemu-system-common && dpkg -x` is enough). Path from $QEMU72_PROXY_HELPER, else
/// see <see cref="Qemu72Helper"/>; reported as skipped when it is not here.
/// QEMU's helper accepts exactly one connection on its named socket.
/// </summary>
public sealed class QemuHelperInteropTests
{
    [Qemu72HelperFact]
    public void Our_client_speaks_to_qemus_helper()
    {
        using Process p = Qemu72Helper.StartOnTempExport("proxy-qemu-", out string root, out string export, out string sock);
        try
        {
            var sw = Stopwatch.StartNew();
            ProxyClient? c = null;
            while (c is null && sw.Elapsed < TimeSpan.FromSeconds(20))
            {
                try { c = ProxyClient.Connect(sock); } catch (ProxyConnectionException) { Thread.Sleep(50); }
            }
            Assert.NotNull(c);
            using (c)
            {
                Exercise(c!, export);
            }
        }
        finally
        {
            if (!p.HasExited) p.Kill();
            p.WaitForExit();
            Directory.Delete(root, true);
        }
    }

    private static unsafe uint HostUid(string path)
    {
        stat st;
        byte[] b = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* pp = b) Assert.Equal(0, LibC.lstat(pp, &st));
        return st.st_uid;
    }

    private static void Exercise(ProxyClient c, string export)
    {
        Assert.Equal(0, c.Mkdir("/d"u8, 0x1ED, 1000, 1000));
        Assert.Equal(1000u, HostUid(Path.Combine(export, "d")));
        Assert.Equal(0, c.Create("/d/f"u8, LibC.O_CREAT | LibC.O_RDWR, 0x1A4, 1000, 1000, out var fd));
        using (var fs = new FileStream(fd!, FileAccess.ReadWrite)) fs.Write("qemu"u8);
        Assert.Equal("qemu", File.ReadAllText(Path.Combine(export, "d/f")));
        Assert.Equal(1000u, HostUid(Path.Combine(export, "d/f")));
        Assert.Equal(-17, c.Create("/d/f"u8, LibC.O_CREAT | LibC.O_EXCL | LibC.O_RDWR, 0x1A4, 1000, 1000, out _));
        Assert.Equal(0, c.Open("/d/f"u8, LibC.O_RDONLY, out var rfd));
        rfd!.Dispose();
        Assert.Equal(-2, c.Open("/nope"u8, LibC.O_RDONLY, out _));

        Assert.Equal(0, c.Lstat("/d/f"u8, out var st));
        Assert.Equal(4UL, st.Size);
        Assert.Equal(1000u, st.Uid);
        Assert.Equal(0, c.Statfs("/"u8, out var sfs));
        Assert.True(sfs.Bsize > 0);
        Assert.Equal(0, c.Link("/d/f"u8, "/d/g"u8));
        Assert.Equal(0, c.Symlink("f"u8, "/d/s"u8, 1000, 1000));
        var buf = new byte[64];
        Assert.Equal(1, c.Readlink("/d/s"u8, buf));
        Assert.Equal((byte)'f', buf[0]);
        Assert.Equal(0, c.Chmod("/d/f"u8, 0x180));
        Assert.Equal(0, c.Chown("/d/s"u8, 1234, 1234));
        Assert.Equal(0, c.Truncate("/d/f"u8, 2));
        Assert.Equal(0, c.Utime("/d/f"u8, 10, 0, 20, 0));
        Assert.Equal(0, c.Lstat("/d/f"u8, out st));
        Assert.Equal((2UL, 10UL, 20UL), (st.Size, st.AtimeSec, st.MtimeSec));
        Assert.Equal(0, c.Rename("/d/g"u8, "/d/h"u8));
        Assert.Equal(0, c.GetVersion("/d/f"u8, out _));
        int r = c.SetXattr("/d/f"u8, "user.k"u8, "v"u8, 0);
        if (r == 0)
        {
            Assert.Equal(1, c.GetXattr("/d/f"u8, "user.k"u8, Span<byte>.Empty));
            Assert.Equal(1, c.GetXattr("/d/f"u8, "user.k"u8, buf));
            Assert.True(c.ListXattr("/d/f"u8, Span<byte>.Empty) > 0);
            Assert.Equal(0, c.RemoveXattr("/d/f"u8, "user.k"u8));
        }
        Assert.Equal(-39, c.Remove("/d"u8));
        Assert.Equal(0, c.Remove("/d/h"u8));
        Assert.Equal(0, c.Remove("/d/s"u8));
        Assert.Equal(0, c.Remove("/d/f"u8));
        Assert.Equal(0, c.Remove("/d"u8));
        Assert.Equal(0, c.Mknod("/n"u8, 0x1000 | 0x1A4, 0, 1000, 1000));
        Assert.False(c.IsBroken);
    }
}

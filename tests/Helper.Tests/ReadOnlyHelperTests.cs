using Tmds.Linux;
using static VirtFs.ProxyFs.Protocol.Errno;

namespace VirtFs.Helper.Tests;

/// <summary>virtfs-proxy-helper -r: the helper itself refuses every change (issue 17), whatever its client asks.</summary>
public sealed class ReadOnlyHelperTests : IDisposable
{
    private readonly HelperProcess _helper = HelperProcess.StartNamed("-r");

    public void Dispose() => _helper.Dispose();

    [Fact]
    public void Every_change_is_refused_and_reads_work()
    {
        File.WriteAllText(Path.Combine(_helper.Export, "f"), "data");
        Directory.CreateDirectory(Path.Combine(_helper.Export, "d"));
        using var c = _helper.Connect();

        Assert.Equal(-EROFS, c.Create("/new"u8, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_EXCL, 0x1A4, 1000, 1000, out var created));
        Assert.Null(created);
        Assert.Equal(-EROFS, c.Open("/f"u8, LibC.O_RDWR, out var rw));
        Assert.Null(rw);
        Assert.Equal(-EROFS, c.Open("/f"u8, LibC.O_RDONLY | LibC.O_TRUNC, out _));
        Assert.Equal(-EROFS, c.Mkdir("/nd"u8, 0x1ED, 1000, 1000));
        Assert.Equal(-EROFS, c.Symlink("f"u8, "/l"u8, 1000, 1000));
        Assert.Equal(-EROFS, c.Link("/f"u8, "/g"u8));
        Assert.Equal(-EROFS, c.Rename("/f"u8, "/g"u8));
        Assert.Equal(-EROFS, c.Chmod("/f"u8, 0x1FF));
        Assert.Equal(-EROFS, c.Chown("/f"u8, 1000, 1000));
        Assert.Equal(-EROFS, c.Truncate("/f"u8, 0));
        Assert.Equal(-EROFS, c.Utime("/f"u8, 0, 0, 0, 0));
        Assert.Equal(-EROFS, c.Remove("/f"u8));
        Assert.Equal(-EROFS, c.SetXattr("/f"u8, "user.x"u8, "1"u8, 0));
        Assert.Equal(-EROFS, c.RemoveXattr("/f"u8, "user.x"u8));

        Assert.Equal(0, c.Open("/f"u8, LibC.O_RDONLY, out var ro));
        using (var fs = new FileStream(ro!, FileAccess.Read))
        {
            var buffer = new byte[16];
            Assert.Equal(4, fs.Read(buffer));
        }
        Assert.Equal(0, c.Lstat("/d"u8, out _));
        Assert.Equal("data", File.ReadAllText(Path.Combine(_helper.Export, "f")));
        Assert.Equal(2, Directory.GetFileSystemEntries(_helper.Export).Length);
    }
    /// <summary>Attack: the client takes a directory fd (every directory Tlopen gets one) and changes the export
    /// through it, where the helper's own refusals never look: openat(O_CREAT), unlinkat, rename through the fd's
    /// /proc/self/fd path, or a read-only fd reopened writable through /proc/self/fd. Only a read-only mount stops
    /// that.</summary>
    [Fact]
    public unsafe void The_kernel_refuses_changes_made_through_a_handed_out_fd()
    {
        File.WriteAllText(Path.Combine(_helper.Export, "f"), "data");
        Directory.CreateDirectory(Path.Combine(_helper.Export, "d"));
        File.WriteAllText(Path.Combine(_helper.Export, "d", "inner"), "inner");
        using var c = _helper.Connect();

        Assert.Equal(0, c.Open("/d"u8, LibC.O_RDONLY | LibC.O_DIRECTORY, out var dir));
        using (dir)
        {
            int d = (int)dir!.DangerousGetHandle();
            fixed (byte* created = "created\0"u8)
            fixed (byte* inner = "inner\0"u8)
            {
                // SAFETY: NUL-terminated literals, pinned for each call; d stays open (dir) through them.
                int fd = LibC.openat(d, created, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_CLOEXEC, 0x1A4);
                int openErrno = LibC.errno;
                if (fd >= 0) LibC.close(fd);
                Assert.Equal((-1, EROFS), (fd < 0 ? -1 : fd, openErrno));
                Assert.Equal(-1, LibC.unlinkat(d, inner, 0));
                Assert.Equal(EROFS, LibC.errno);
            }
            var moveError = Assert.ThrowsAny<IOException>(() => File.Move($"/proc/self/fd/{d}/inner", $"/proc/self/fd/{d}/moved"));
            Assert.Equal(EROFS, moveError.HResult);
        }
        Assert.Equal(0, c.Open("/f"u8, LibC.O_RDONLY, out var ro));
        using (ro)
        {
            byte[] path = System.Text.Encoding.ASCII.GetBytes($"/proc/self/fd/{(int)ro!.DangerousGetHandle()}\0");
            fixed (byte* p = path)
            {
                // SAFETY: NUL-terminated, pinned; ro stays open through the call.
                int fd = LibC.open(p, LibC.O_WRONLY | LibC.O_CLOEXEC);
                int openErrno = LibC.errno;
                if (fd >= 0) LibC.close(fd);
                Assert.Equal((-1, EROFS), (fd < 0 ? -1 : fd, openErrno));
            }
        }
        Assert.False(File.Exists(Path.Combine(_helper.Export, "d", "created")));
        Assert.Equal("inner", File.ReadAllText(Path.Combine(_helper.Export, "d", "inner")));
        Assert.Equal("data", File.ReadAllText(Path.Combine(_helper.Export, "f")));
    }
    /// <summary>A change that is malformed is outside the protocol on a read-only export too: the connection ends,
    /// it does not get EROFS as if it were a request.</summary>
    [Fact]
    public void A_malformed_change_ends_the_connection()
    {
        _helper.SendRawExpectingClose([.. HelperProcess.Header(VirtFs.ProxyFs.Protocol.ProxyRequestType.Mkdir, 4), 0, 0, 0, 0]);
        _helper.SendRawExpectingClose([.. HelperProcess.Header(VirtFs.ProxyFs.Protocol.ProxyRequestType.Remove, 8),
            1, 0, (byte)'/', 0, 0, 0, 0, 0]);
        using var c = _helper.Connect();
        Assert.Equal(-EROFS, c.Mkdir("/nd"u8, 0x1ED, 1000, 1000));
    }
}

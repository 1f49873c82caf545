using System.Text;
using Microsoft.Win32.SafeHandles;
using VirtFs.Virtio9p.FileSystem;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>
/// Rootless mode keeps the guest inside the shared directory (issue 16): symlinks made by the guest or the host,
/// "..", and a directory swapped for a symlink to the outside between (and during) requests all resolve inside,
/// in both security models.
/// </summary>
public sealed class SharedDirConfinementTests : IDisposable
{
    private readonly LocalExport _local = new();
    private readonly string _root;
    private readonly string _export;
    private readonly string _outside;

    public SharedDirConfinementTests()
    {
        (_root, _export, _outside) = (_local.Root, _local.Export, _local.Outside);
        File.WriteAllText(Path.Combine(_outside, "secret"), "S");
    }

    public void Dispose() => _local.Dispose();

    public static TheoryData<SecurityModel> Models => new() { SecurityModel.MappedXattr, SecurityModel.None };

    [Theory]
    [MemberData(nameof(Models))]
    public void Symlinks_and_dotdot_resolve_inside(SecurityModel model)
    {
        using var fs = new LocalFileSystem(_export, model);
        File.CreateSymbolicLink(Path.Combine(_export, "abs"), _outside);               // host-made, absolute
        File.CreateSymbolicLink(Path.Combine(_export, "rel"), "../outside");           // host-made, relative, climbing out
        Assert.Equal(0, fs.Symlink("/../../outside"u8, "/guest"u8, 0, 0));  // guest-made
        foreach (string path in new[] { "/abs/secret", "/rel/secret", "/guest/secret", "/../outside/secret", "/abs/../../outside/secret" })
        {
            int r = fs.Open(Encoding.UTF8.GetBytes(path), 0, out SafeFileHandle? fd);
            fd?.Dispose();
            Assert.True(r < 0, $"{path} opened ({model})");
            Assert.True(fs.Lstat(Encoding.UTF8.GetBytes(path), out _) < 0, $"{path} stat'ed ({model})");
        }
        // A final host symlink to the outside, followed by Open, lands inside the export (where nothing is).
        Assert.Equal(-2, fs.Open("/abs"u8, 0x10000 /* O_DIRECTORY */, out _));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public async Task A_directory_swapped_for_a_symlink_never_leads_outside(SecurityModel model)
    {
        using var fs = new LocalFileSystem(_export, model);
        string d = Path.Combine(_export, "d");
        string parked = Path.Combine(_export, "d.real");
        Directory.CreateDirectory(d);
        File.WriteAllText(Path.Combine(d, "secret"), "I");
        // Until enough of both states were seen (bounded: a loaded machine may schedule the threads unevenly).
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        int swaps = 0;
        int opened = 0;
        var swapper = Task.Run(() =>
        {
            // The host (or another guest request) swaps d between the real directory and a symlink to the outside.
            while (!stop.IsCancellationRequested)
            {
                Directory.Move(d, parked);
                File.CreateSymbolicLink(d, _outside);
                Thread.Yield();
                File.Delete(d);
                Directory.Move(parked, d);
                Interlocked.Increment(ref swaps);
                Thread.Yield(); // the real directory stays a moment too, so opens succeed sometimes
                if (Volatile.Read(ref opened) >= 20 && Volatile.Read(ref swaps) >= 200) stop.Cancel();
            }
        });
        ulong outsideInode;
        using (var whole = new LocalFileSystem(_root))
        {
            Assert.Equal(0, whole.Lstat("/outside/secret"u8, out FileStat o));
            outsideInode = o.Inode;
        }
        UnixFileMode outsideMode = File.GetUnixFileMode(Path.Combine(_outside, "secret"));
        byte[] buffer = new byte[8];
        while (!swapper.IsCompleted)
        {
            if (fs.Open("/d/secret"u8, 0, out SafeFileHandle? fd) == 0)
            {
                using (fd)
                {
                    int n = RandomAccess.Read(fd!, buffer, 0);
                    Assert.Equal("I", Encoding.ASCII.GetString(buffer, 0, n));
                    Interlocked.Increment(ref opened);
                }
            }
            fs.Chmod("/d/secret"u8, 0x1FF);
            fs.SetXattr("/d/secret"u8, "user.mark"u8, "x"u8, 0);
            if (fs.Lstat("/d/secret"u8, out FileStat st) == 0)
            {
                Assert.NotEqual(outsideInode, st.Inode);
            }
        }
        await swapper;
        Assert.True(swaps > 10 && opened > 0, $"swaps {swaps}, opened {opened}");
        Assert.Equal("S", File.ReadAllText(Path.Combine(_outside, "secret")));
        Assert.Equal(outsideMode, File.GetUnixFileMode(Path.Combine(_outside, "secret")));
        Assert.Equal(["secret"], new DirectoryInfo(_outside).GetFileSystemInfos().Select(f => f.Name));
        Assert.Throws<IOException>(() => Xattr.Get(Path.Combine(_outside, "secret"), "user.mark"));
        Assert.Throws<IOException>(() => Xattr.Get(Path.Combine(_outside, "secret"), "user.virtfs.mode"));
    }
}

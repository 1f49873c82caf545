using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Interop;
using VirtFs.Virtio9p.FileSystem.Local;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>What only the in-process implementation has: its constructor, its path splitting, its C struct.</summary>
public sealed class LocalFileSystemTests : IDisposable
{
    private readonly LocalExport _export = new();

    public void Dispose() => _export.Dispose();

    [Fact]
    public void Constructor_RefusesAMissingDirectory()
    {
        Assert.Throws<IOException>(() => new LocalFileSystem(Path.Combine(_export.Root, "nope")));
    }

    [Fact]
    public void Constructor_RefusesAFile()
    {
        string f = Path.Combine(_export.Root, "file");
        File.WriteAllText(f, "x");
        Assert.Throws<IOException>(() => new LocalFileSystem(f));
    }

    [Theory]
    [InlineData("/..")]
    [InlineData("/a/..")]
    [InlineData("/.")]
    [InlineData("relative")]
    public void DotNamesAndRelativePaths_AreEinval(string path)
    {
        Assert.Equal(-22, _export.FileSystem.Lstat(Encoding.UTF8.GetBytes(path), out _));
        Assert.Equal(-22, _export.FileSystem.Remove(Encoding.UTF8.GetBytes(path)));
        Assert.Equal(-22, _export.FileSystem.Chmod(Encoding.UTF8.GetBytes(path), 0x1FF));
    }

    [Fact]
    public void DotDotInTheMiddle_IsClampedAtTheRoot()
    {
        File.WriteAllText(Path.Combine(_export.Outside, "secret"), "S");
        File.WriteAllText(Path.Combine(_export.Export, "inside"), "I");
        // "/../outside/secret": the parent "../outside" resolves (RESOLVE_IN_ROOT) to the export's "/outside".
        Assert.Equal(-2, _export.FileSystem.Lstat("/../outside/secret"u8, out _));
        Assert.Equal(0, _export.FileSystem.Lstat("/../../inside"u8, out _));
    }

    [Fact]
    public void Dispose_ThenUse_Throws()
    {
        var fs = new LocalFileSystem(_export.Export);
        fs.Dispose();
        Assert.Throws<ObjectDisposedException>(() => fs.Lstat("/"u8, out _));
    }

    [Theory]
    [InlineData("/", true, ".", "", ".")]
    [InlineData("///", true, ".", "", ".")]
    [InlineData("/a", false, ".", "a", "a")]
    [InlineData("/a/b/c", false, "a/b", "c", "a/b/c")]
    [InlineData("/a//b/", false, "a", "b", "a//b")]
    public void LocalPath_Splits(string path, bool isRoot, string parent, string name, string relative)
    {
        Span<byte> scratch = stackalloc byte[LocalPath.ScratchSize];
        Assert.Equal(0, LocalPath.Parse(Encoding.UTF8.GetBytes(path), scratch, out LocalPath p));
        Assert.Equal(isRoot, p.IsRoot);
        Assert.Equal(parent + "\0", Encoding.UTF8.GetString(p.Parent));
        Assert.Equal(name + "\0", Encoding.UTF8.GetString(p.Name));
        Assert.Equal(relative + "\0", Encoding.UTF8.GetString(p.Relative));
    }

    [Fact]
    public void LocalPath_Limits()
    {
        byte[] scratch = new byte[LocalPath.ScratchSize];
        Assert.Equal(-2, LocalPath.Parse(""u8, scratch, out _));
        Assert.Equal(0, LocalPath.Parse(Encoding.UTF8.GetBytes("/" + new string('a', 255)), scratch, out _));
        Assert.Equal(-36, LocalPath.Parse(Encoding.UTF8.GetBytes("/" + new string('a', 256)), scratch, out _));
        string longPath = string.Concat(Enumerable.Repeat("/" + new string('b', 200), 25))[..4095];
        Assert.Equal(0, LocalPath.Parse(Encoding.UTF8.GetBytes(longPath), scratch, out _));
        // Above PATH_MAX: parsed for chunked resolution, into a larger scratch, up to the helper mode's cap.
        byte[] longer = Encoding.UTF8.GetBytes(longPath + "b");
        Assert.Throws<ArgumentException>(() => LocalPath.Parse(longer, scratch, out _));
        Assert.Equal(0, LocalPath.Parse(longer, new byte[LocalPath.ScratchSizeFor(longer.Length)], out LocalPath deep));
        Assert.Equal(longPath[1..] + "b\0", Encoding.UTF8.GetString(deep.Relative));
        string capped = string.Concat(Enumerable.Repeat("/" + new string('b', 200), 82))[..LocalPath.MaxLongPathLength];
        byte[] big = new byte[LocalPath.ScratchSizeFor(capped.Length + 1)];
        Assert.Equal(0, LocalPath.Parse(Encoding.UTF8.GetBytes(capped), big, out _));
        Assert.Equal(-36, LocalPath.Parse(Encoding.UTF8.GetBytes(capped + "b"), big, out _));
        Assert.Equal(-22, LocalPath.Parse("/a\0b"u8, scratch, out _));
    }

    [Fact]
    public void ProcFdPath_Formats()
    {
        Span<byte> buffer = stackalloc byte[ProcFdPath.BufferSize];
        Assert.Equal("/proc/self/fd/2147483647\0", Encoding.UTF8.GetString(ProcFdPath.Format(int.MaxValue, buffer)));
    }

    /// <summary>struct statfs on x86-64 (asm-generic/statfs.h with 64-bit words): offsets as the C compiler lays them out.</summary>
    [Fact]
    public void StatFs_LayoutMatchesC()
    {
        Assert.Equal(120, Marshal.SizeOf<StatFs>());
        Assert.Equal(0, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_type)));
        Assert.Equal(8, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_bsize)));
        Assert.Equal(16, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_blocks)));
        Assert.Equal(48, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_ffree)));
        Assert.Equal(56, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_fsid0)));
        Assert.Equal(64, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_namelen)));
        Assert.Equal(72, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_frsize)));
        Assert.Equal(80, (int)Marshal.OffsetOf<StatFs>(nameof(StatFs.f_flags)));
    }

    [Fact]
    public void Statfs_MatchesTheHostsStatfs()
    {
        Assert.Equal(0, _export.FileSystem.Statfs("/"u8, out FileSystemStats s));
        var drive = new DriveInfo(_export.Export);
        Assert.Equal((long)s.Blocks * s.BlockSize, drive.TotalSize);
    }

    [Fact]
    public void ConcurrentUse_IsSafe()
    {
        var fs = _export.FileSystem;
        Parallel.For(0, 200, i =>
        {
            byte[] path = Encoding.UTF8.GetBytes($"/c{i}");
            Assert.Equal(0, fs.Create(path, 0x42, 0x1A4, 0, 0, out SafeFileHandle? fd)); // O_RDWR|O_CREAT
            fd!.Dispose();
            Assert.Equal(0, fs.Lstat(path, out _));
            Assert.Equal(0, fs.Remove(path));
        });
    }
}

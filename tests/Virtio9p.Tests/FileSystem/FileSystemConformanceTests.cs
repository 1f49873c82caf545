using System.Text;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.Virtio9p.FileSystem;
using static Tmds.Linux.LibC;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>
/// One behaviour contract for every <see cref="IFileSystem"/>, written once and run on each implementation
/// (ConformanceRuns.cs). Tests run as root; each works in its own directory (mode 0777, so a create as uid 1000
/// is allowed whoever checks permissions) under the export. Host-side setup and checks use plain syscalls on
/// the host path, never the implementation under test.
/// <para>
/// Known, documented differences (flags overridden by a run):
/// - chmod and truncate of a final symlink: our helper follows it inside its chroot, as QEMU 7.2's helper did;
///   LocalFileSystem refuses (EOPNOTSUPP, EINVAL), as fchmodat(AT_SYMLINK_NOFOLLOW) and vfs_truncate do.
/// Both create for another user regardless of that user's write permission on the parent: the helper keeps
/// CAP_DAC_OVERRIDE while acting as the requester (as QEMU's setugid did), LocalFileSystem as root creates and
/// chowns; the guest kernel (access=user) is what checks the requester's permission.
/// Neither lets anything outside the export be reached; the escape tests check that on both.
/// </para>
/// </summary>
public abstract unsafe class FileSystemConformanceTests
{
    private const int EPERM_ = 1, ENOENT_ = 2, EEXIST_ = 17, ENOTDIR_ = 20, EISDIR_ = 21, EINVAL_ = 22,
        ENOTEMPTY_ = 39, ELOOP_ = 40, ENODATA_ = 61, ERANGE_ = 34, ENXIO_ = 6, EOPNOTSUPP_ = 95,
        ENAMETOOLONG_ = 36;
    private const uint S_IFIFO_ = 0x1000, S_IFCHR_ = 0x2000, S_IFSOCK_ = 0xC000, S_IFREG_ = 0x8000;
    private const int XATTR_CREATE_ = 1, XATTR_REPLACE_ = 2;

    private readonly Lazy<string> _base;

    protected FileSystemConformanceTests()
    {
        _base = new Lazy<string>(() =>
        {
            string name = "t" + Guid.NewGuid().ToString("N")[..12];
            string host = Path.Combine(Export, name);
            Directory.CreateDirectory(host);
            File.SetUnixFileMode(host, (UnixFileMode)0x1FF);
            return name;
        });
    }

    protected abstract IFileSystem Fs { get; }
    protected abstract string Export { get; }
    protected abstract string Outside { get; }
    protected virtual bool ChmodFollowsFinalSymlink => false;
    protected virtual bool TruncateFollowsFinalSymlink => false;

    /// <summary>The 9P path of <paramref name="rel"/> inside this test's directory.</summary>
    private byte[] P(string rel = "") => Encoding.UTF8.GetBytes("/" + _base.Value + (rel.Length == 0 ? "" : "/" + rel));

    /// <summary>The host path of <paramref name="rel"/> inside this test's directory.</summary>
    private string H(string rel = "") => rel.Length == 0 ? Path.Combine(Export, _base.Value) : Path.Combine(Export, _base.Value, rel);

    private string Write(string rel, string content)
    {
        string h = H(rel);
        File.WriteAllText(h, content);
        return h;
    }

    private static stat HostLstat(string path)
    {
        stat st;
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* pp = p)
        {
            Assert.True(lstat(pp, &st) == 0, $"host lstat {path}: errno {errno}");
        }
        return st;
    }

    private static uint HostMode(string path) => (ushort)HostLstat(path).st_mode;

    private static void HostMknod(string path, uint mode, ulong rdev = 0)
    {
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* pp = p)
        {
            Assert.True(mknod(pp, (mode_t)(ushort)mode, rdev) == 0, $"host mknod {path}: errno {errno}");
        }
    }

    private static string ReadAll(SafeFileHandle fd)
    {
        byte[] buffer = new byte[4096];
        int n = RandomAccess.Read(fd, buffer, 0);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    private static void WriteAt0(SafeFileHandle fd, string text) => RandomAccess.Write(fd, Encoding.UTF8.GetBytes(text), 0);

    private static int GetFl(SafeFileHandle fd) => fcntl((int)fd.DangerousGetHandle(), F_GETFL);

    /// <summary>Runs an Open/Create with a deadline: a fifo opened without O_NONBLOCK would block forever.</summary>
    private static int WithDeadline(Func<int> call)
    {
        Task<int> task = Task.Run(call);
        Assert.True(task.Wait(TimeSpan.FromSeconds(10)), "the call blocked: a special file was opened");
        return task.Result;
    }

    // ---------------------------------------------------------------- paths

    [ConformanceFact]
    public void BadPaths_AreRefused()
    {
        Assert.Equal(-ENOENT_, Fs.Lstat(""u8, out _));
        Assert.Equal(-EINVAL_, Fs.Lstat(Encoding.UTF8.GetBytes("/" + _base.Value + "/a\0b"), out _));
        Assert.Equal(-ENAMETOOLONG_, Fs.Lstat(Encoding.UTF8.GetBytes("/" + new string('a', 5000)), out _));
        Assert.Equal(-ENAMETOOLONG_, Fs.Lstat(P(new string('a', 300)), out _));
    }

    // ---------------------------------------------------------------- Lstat

    [ConformanceFact]
    public void Lstat_Root_IsADirectory()
    {
        Assert.Equal(0, Fs.Lstat("/"u8, out FileStat st));
        Assert.True(st.IsDirectory);
        Assert.Equal((ulong)HostLstat(Export).st_ino, st.Inode);
    }

    [ConformanceFact]
    public void Lstat_File_MatchesHost()
    {
        string h = Write("f", "hello");
        File.SetUnixFileMode(h, (UnixFileMode)0x1A4); // 0644
        Assert.Equal(0, Fs.Lstat(P("f"), out FileStat st));
        stat host = HostLstat(h);
        Assert.True(st.IsRegular);
        Assert.Equal(5ul, st.Size);
        Assert.Equal(S_IFREG_ | 0x1A4u, st.Mode);
        Assert.Equal((ulong)host.st_ino, st.Inode);
        Assert.Equal((ulong)host.st_dev, st.Device);
        Assert.Equal(1ul, st.LinkCount);
        Assert.Equal((long)host.st_mtim.tv_sec, st.Modify.Seconds);
        Assert.Equal((uint)(long)host.st_mtim.tv_nsec, st.Modify.Nanoseconds);
    }

    [ConformanceFact]
    public void Lstat_Errors()
    {
        Write("f", "x");
        Assert.Equal(-ENOENT_, Fs.Lstat(P("missing"), out _));
        Assert.Equal(-ENOENT_, Fs.Lstat(P("missing/child"), out _));
        Assert.Equal(-ENOTDIR_, Fs.Lstat(P("f/child"), out _));
    }

    [ConformanceFact]
    public void Lstat_Symlink_IsTheLinkItself()
    {
        Write("target", "12345678");
        File.CreateSymbolicLink(H("link"), "target");
        Assert.Equal(0, Fs.Lstat(P("link"), out FileStat st));
        Assert.True(st.IsSymlink);
        Assert.Equal(6ul, st.Size); // strlen("target")
    }

    // ---------------------------------------------------------------- Open

    [ConformanceFact]
    public void Open_ReturnsAReadableAndWritableFd()
    {
        string h = Write("f", "content");
        Assert.Equal(0, Fs.Open(P("f"), O_RDWR | O_NOFOLLOW, out SafeFileHandle? fd));
        using (fd)
        {
            Assert.Equal("content", ReadAll(fd!));
            WriteAt0(fd!, "CONT");
            Assert.Equal(0, GetFl(fd!) & O_NONBLOCK); // cleared: not asked for
        }
        Assert.Equal("CONTent", File.ReadAllText(h));
    }

    [ConformanceFact]
    public void Open_ReadOnlyFd_CannotWrite()
    {
        Write("f", "content");
        Assert.Equal(0, Fs.Open(P("f"), O_RDONLY | O_NOFOLLOW, out SafeFileHandle? fd));
        using (fd)
        {
            Assert.Equal(O_RDONLY, GetFl(fd!) & 3);
            Assert.ThrowsAny<Exception>(() => WriteAt0(fd!, "x"));
        }
    }

    [ConformanceFact]
    public void Open_Truncate_And_Nonblock_AreHonoured()
    {
        string h = Write("f", "content");
        Assert.Equal(0, Fs.Open(P("f"), O_WRONLY | O_TRUNC | O_NONBLOCK | O_NOFOLLOW, out SafeFileHandle? fd));
        using (fd)
        {
            Assert.NotEqual(0, GetFl(fd!) & O_NONBLOCK);
        }
        Assert.Equal(0, new FileInfo(h).Length);
    }

    [ConformanceFact]
    public void Open_Directory()
    {
        Directory.CreateDirectory(H("d"));
        Assert.Equal(0, Fs.Open(P("d"), O_RDONLY | O_DIRECTORY | O_NOFOLLOW, out SafeFileHandle? fd));
        fd!.Dispose();
        Assert.Equal(0, Fs.Open("/"u8, O_RDONLY | O_DIRECTORY, out fd));
        fd!.Dispose();
        Assert.Equal(-EISDIR_, Fs.Open(P("d"), O_WRONLY | O_NOFOLLOW, out fd));
        Assert.Null(fd);
    }

    [ConformanceFact]
    public void Open_Errors()
    {
        Write("f", "x");
        Assert.Equal(-ENOENT_, Fs.Open(P("missing"), O_RDONLY | O_NOFOLLOW, out SafeFileHandle? fd));
        Assert.Null(fd);
        Assert.Equal(-ENOTDIR_, Fs.Open(P("f"), O_RDONLY | O_DIRECTORY | O_NOFOLLOW, out fd));
        Assert.Equal(-ENOTDIR_, Fs.Open(P("f/x"), O_RDONLY | O_NOFOLLOW, out fd));
    }

    [ConformanceFact]
    public void Open_WithCreateFlag_IsRefused()
    {
        Assert.Equal(-EINVAL_, Fs.Open(P("new"), O_RDWR | O_CREAT, out SafeFileHandle? fd));
        Assert.Null(fd);
        Assert.False(File.Exists(H("new")));
    }

    [ConformanceFact]
    public void Open_FinalSymlink_WithNofollow_IsELOOP()
    {
        Write("target", "x");
        File.CreateSymbolicLink(H("link"), "target");
        Assert.Equal(-ELOOP_, Fs.Open(P("link"), O_RDONLY | O_NOFOLLOW, out SafeFileHandle? fd));
        Assert.Null(fd);
    }

    [ConformanceFact]
    public void Open_FinalSymlink_WithoutNofollow_FollowsInsideTheExport()
    {
        Write("target", "inside");
        File.CreateSymbolicLink(H("rel"), "target");
        File.CreateSymbolicLink(H("abs"), "/" + _base.Value + "/target"); // absolute: the export is "/"
        Assert.Equal(0, Fs.Open(P("rel"), O_RDONLY, out SafeFileHandle? fd));
        using (fd) Assert.Equal("inside", ReadAll(fd!));
        Assert.Equal(0, Fs.Open(P("abs"), O_RDONLY, out fd));
        using (fd) Assert.Equal("inside", ReadAll(fd!));
    }

    // ---------------------------------------------------------------- special files (CVE-2023-2861)

    [ConformanceFact]
    public void Open_Fifo_IsNeverOpened()
    {
        HostMknod(H("fifo"), S_IFIFO_ | 0x1B6);
        SafeFileHandle? fd = null;
        // No writer exists: a real open for reading without O_NONBLOCK would block for ever.
        Assert.Equal(-ENXIO_, WithDeadline(() => Fs.Open(P("fifo"), O_RDONLY | O_NOFOLLOW, out fd)));
        Assert.Null(fd);
        Assert.Equal(-ENXIO_, WithDeadline(() => Fs.Open(P("fifo"), O_WRONLY | O_NOFOLLOW, out fd)));
        Assert.Equal(-ENXIO_, WithDeadline(() => Fs.Create(P("fifo"), O_RDWR | O_CREAT | O_NOFOLLOW, 0x1A4, 0, 0, out fd)));
        Assert.Null(fd);
    }

    [ConformanceFact]
    public void Open_DeviceNodeAndSocket_AreNeverOpened()
    {
        // /dev/null's numbers (1, 3): harmless if it were opened, but it must not be.
        Assert.Equal(0, Fs.Mknod(P("null"), S_IFCHR_ | 0x1B6, FileStat.MakeDevice(1, 3), 0, 0));
        Assert.Equal(0, Fs.Lstat(P("null"), out FileStat st));
        Assert.Equal(S_IFCHR_, st.Mode & FileStat.TypeMask);
        Assert.Equal(FileStat.MakeDevice(1, 3), st.RawDevice);
        Assert.Equal(-ENXIO_, Fs.Open(P("null"), O_RDWR | O_NOFOLLOW, out SafeFileHandle? fd));
        Assert.Null(fd);
        Assert.Equal(-ENXIO_, Fs.Create(P("null"), O_RDWR | O_CREAT | O_NOFOLLOW, 0x1A4, 0, 0, out fd));
        Assert.Null(fd);

        Assert.Equal(0, Fs.Mknod(P("sock"), S_IFSOCK_ | 0x1B6, 0, 0, 0));
        Assert.Equal(-ENXIO_, Fs.Open(P("sock"), O_RDONLY | O_NOFOLLOW, out fd));
    }

    [ConformanceFact]
    public void Open_SymlinkToDeviceNode_IsRefused()
    {
        HostMknod(H("null"), S_IFCHR_ | 0x1B6, FileStat.MakeDevice(1, 3));
        File.CreateSymbolicLink(H("link"), "null");
        Assert.Equal(-ENXIO_, Fs.Open(P("link"), O_RDWR, out SafeFileHandle? fd));
        Assert.Null(fd);
    }

    // ---------------------------------------------------------------- Create

    [ConformanceFact]
    public void Create_NewFile_IsOwnedByTheRequester_AndTheFdWorks()
    {
        Assert.Equal(0, Fs.Create(P("new"), O_RDWR | O_CREAT | O_NOFOLLOW, 0x1A0, 1000, 1000, out SafeFileHandle? fd)); // 0640
        using (fd)
        {
            WriteAt0(fd!, "written through the fd");
            Assert.Equal("written through the fd", ReadAll(fd!));
            Assert.Equal(0, GetFl(fd!) & O_NONBLOCK);
        }
        stat host = HostLstat(H("new"));
        Assert.Equal(1000u, (uint)host.st_uid);
        Assert.Equal(1000u, (uint)host.st_gid);
        Assert.Equal(S_IFREG_ | 0x1A0u, (uint)(ushort)host.st_mode);
        Assert.Equal("written through the fd", File.ReadAllText(H("new")));
    }

    [ConformanceFact]
    public void Create_ModeIsExact()
    {
        Assert.Equal(0, Fs.Create(P("m"), O_WRONLY | O_CREAT | O_NOFOLLOW, 0x1B6, 0, 0, out SafeFileHandle? fd)); // 0666
        fd!.Dispose();
        Assert.Equal(0x1B6u, HostMode(H("m")) & 0xFFF);
    }

    [ConformanceFact]
    public void Create_Existing()
    {
        string h = Write("f", "old");
        Assert.Equal(-EEXIST_, Fs.Create(P("f"), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0x1A4, 0, 0, out SafeFileHandle? fd));
        Assert.Null(fd);
        Assert.Equal(0, Fs.Create(P("f"), O_RDWR | O_CREAT | O_NOFOLLOW, 0x1A4, 0, 0, out fd));
        using (fd) Assert.Equal("old", ReadAll(fd!));
        Assert.Equal(0, Fs.Create(P("f"), O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW, 0x1A4, 0, 0, out fd));
        fd!.Dispose();
        Assert.Equal(0, new FileInfo(h).Length);
    }

    [ConformanceFact]
    public void Create_Errors()
    {
        Write("f", "x");
        Directory.CreateDirectory(H("d"));
        Assert.Equal(-ENOENT_, Fs.Create(P("missing/new"), O_RDWR | O_CREAT, 0x1A4, 0, 0, out SafeFileHandle? fd));
        Assert.Equal(-ENOTDIR_, Fs.Create(P("f/new"), O_RDWR | O_CREAT, 0x1A4, 0, 0, out fd));
        Assert.Equal(-EISDIR_, Fs.Create(P("d"), O_RDWR | O_CREAT, 0x1A4, 0, 0, out fd));
        Assert.Null(fd);
    }

    [ConformanceFact]
    public void Create_InARootOwnedDirectory_AsAnotherUser()
    {
        Directory.CreateDirectory(H("private"));
        File.SetUnixFileMode(H("private"), (UnixFileMode)0x1ED); // 0755 root:root
        int r = Fs.Create(P("private/f"), O_RDWR | O_CREAT | O_NOFOLLOW, 0x1A4, 1000, 1000, out SafeFileHandle? fd);
        fd?.Dispose();
        Assert.Equal(0, r);
        Assert.Equal(1000u, (uint)HostLstat(H("private/f")).st_uid);
    }

    // ---------------------------------------------------------------- Mkdir / Mknod / Symlink

    [ConformanceFact]
    public void Mkdir_CreatesAnOwnedDirectory()
    {
        Assert.Equal(0, Fs.Mkdir(P("d"), 0x1E8, 1000, 1000)); // 0750
        stat host = HostLstat(H("d"));
        Assert.Equal(0x4000u | 0x1E8u, (uint)(ushort)host.st_mode);
        Assert.Equal(1000u, (uint)host.st_uid);
        Assert.Equal(1000u, (uint)host.st_gid);
    }

    [ConformanceFact]
    public void Mkdir_Errors()
    {
        Directory.CreateDirectory(H("d"));
        Write("f", "x");
        Assert.Equal(-EEXIST_, Fs.Mkdir(P("d"), 0x1ED, 0, 0));
        Assert.Equal(-EEXIST_, Fs.Mkdir(P("f"), 0x1ED, 0, 0));
        Assert.Equal(-ENOENT_, Fs.Mkdir(P("missing/d"), 0x1ED, 0, 0));
        Assert.Equal(-ENOTDIR_, Fs.Mkdir(P("f/d"), 0x1ED, 0, 0));
        Assert.Equal(-EEXIST_, Fs.Mkdir("/"u8, 0x1ED, 0, 0));
    }

    [ConformanceFact]
    public void Mknod_Fifo_IsOwnedByTheRequester()
    {
        Assert.Equal(0, Fs.Mknod(P("fifo"), S_IFIFO_ | 0x1A4, 0, 1000, 1000));
        stat host = HostLstat(H("fifo"));
        Assert.Equal(S_IFIFO_ | 0x1A4u, (uint)(ushort)host.st_mode);
        Assert.Equal(1000u, (uint)host.st_uid);
        Assert.Equal(1000u, (uint)host.st_gid);
        Assert.Equal(-EEXIST_, Fs.Mknod(P("fifo"), S_IFIFO_ | 0x1A4, 0, 1000, 1000));
        Assert.Equal(-ENOENT_, Fs.Mknod(P("missing/fifo"), S_IFIFO_ | 0x1A4, 0, 1000, 1000));
    }

    [ConformanceFact]
    public void Symlink_CreatesAnOwnedLink()
    {
        Assert.Equal(0, Fs.Symlink("some/target"u8, P("link"), 1000, 1000));
        stat host = HostLstat(H("link"));
        Assert.Equal(0xA000u, (uint)(ushort)host.st_mode & 0xF000u);
        Assert.Equal(1000u, (uint)host.st_uid);
        Assert.Equal(1000u, (uint)host.st_gid);
        Assert.Equal("some/target", new FileInfo(H("link")).LinkTarget);
        Assert.Equal(-EEXIST_, Fs.Symlink("x"u8, P("link"), 0, 0));
        Assert.Equal(-ENOENT_, Fs.Symlink("x"u8, P("missing/link"), 0, 0));
    }

    // ---------------------------------------------------------------- Readlink

    [ConformanceFact]
    public void Readlink_ReturnsTheTarget_TruncatedToTheBuffer()
    {
        File.CreateSymbolicLink(H("link"), "/abs/target");
        byte[] buffer = new byte[256];
        int n = Fs.Readlink(P("link"), buffer);
        Assert.Equal("/abs/target", Encoding.UTF8.GetString(buffer, 0, n));
        Assert.Equal(4, Fs.Readlink(P("link"), buffer.AsSpan(0, 4)));
        Assert.Equal("/abs", Encoding.UTF8.GetString(buffer, 0, 4));
    }

    [ConformanceFact]
    public void Readlink_Errors()
    {
        Write("f", "x");
        byte[] buffer = new byte[64];
        Assert.Equal(-EINVAL_, Fs.Readlink(P("f"), buffer));
        Assert.Equal(-ENOENT_, Fs.Readlink(P("missing"), buffer));
        Assert.Equal(-EINVAL_, Fs.Readlink(P("f"), Span<byte>.Empty));
    }

    // ---------------------------------------------------------------- Link

    [ConformanceFact]
    public void Link_MakesAHardLink()
    {
        Write("f", "x");
        Assert.Equal(0, Fs.Link(P("f"), P("g")));
        Assert.Equal(HostLstat(H("f")).st_ino, HostLstat(H("g")).st_ino);
        Assert.Equal(0, Fs.Lstat(P("f"), out FileStat st));
        Assert.Equal(2ul, st.LinkCount);
    }

    [ConformanceFact]
    public void Link_OfASymlink_LinksTheLinkItself()
    {
        Write("target", "x");
        File.CreateSymbolicLink(H("link"), "target");
        Assert.Equal(0, Fs.Link(P("link"), P("link2")));
        Assert.Equal(HostLstat(H("link")).st_ino, HostLstat(H("link2")).st_ino);
        Assert.Equal(1ul, (ulong)HostLstat(H("target")).st_nlink);
    }

    [ConformanceFact]
    public void Link_Errors()
    {
        Write("f", "x");
        Write("g", "y");
        Directory.CreateDirectory(H("d"));
        Assert.Equal(-EEXIST_, Fs.Link(P("f"), P("g")));
        Assert.Equal(-ENOENT_, Fs.Link(P("missing"), P("h")));
        Assert.Equal(-ENOENT_, Fs.Link(P("f"), P("missing/h")));
        Assert.Equal(-EPERM_, Fs.Link(P("d"), P("d2")));
    }

    // ---------------------------------------------------------------- Rename

    [ConformanceFact]
    public void Rename_MovesAndReplaces()
    {
        Write("a", "A");
        Write("b", "B");
        Directory.CreateDirectory(H("d"));
        Assert.Equal(0, Fs.Rename(P("a"), P("d/a2")));
        Assert.Equal("A", File.ReadAllText(H("d/a2")));
        Assert.False(File.Exists(H("a")));
        Assert.Equal(0, Fs.Rename(P("d/a2"), P("b")));
        Assert.Equal("A", File.ReadAllText(H("b")));
    }

    [ConformanceFact]
    public void Rename_Errors()
    {
        Write("f", "x");
        Directory.CreateDirectory(H("d"));
        Directory.CreateDirectory(H("full"));
        Write("full/inner", "x");
        Directory.CreateDirectory(H("empty"));
        Assert.Equal(-ENOENT_, Fs.Rename(P("missing"), P("x")));
        Assert.Equal(-ENOTEMPTY_, Fs.Rename(P("d"), P("full")));
        Assert.Equal(0, Fs.Rename(P("d"), P("empty")));
        Assert.Equal(-ENOTDIR_, Fs.Rename(P("empty"), P("f")));
        Assert.Equal(-EISDIR_, Fs.Rename(P("f"), P("empty")));
        Assert.Equal(-ENOENT_, Fs.Rename(P("f"), P("missing/x")));
    }

    // ---------------------------------------------------------------- Remove

    [ConformanceFact]
    public void Remove_FileAndEmptyDirectory()
    {
        Write("f", "x");
        Directory.CreateDirectory(H("d"));
        Assert.Equal(0, Fs.Remove(P("f")));
        Assert.Equal(0, Fs.Remove(P("d")));
        Assert.False(File.Exists(H("f")));
        Assert.False(Directory.Exists(H("d")));
    }

    [ConformanceFact]
    public void Remove_Errors()
    {
        Directory.CreateDirectory(H("full"));
        Write("full/inner", "x");
        Write("f", "x");
        Assert.Equal(-ENOTEMPTY_, Fs.Remove(P("full")));
        Assert.Equal(-ENOENT_, Fs.Remove(P("missing")));
        Assert.Equal(-ENOTDIR_, Fs.Remove(P("f/x")));
    }

    [ConformanceFact]
    public void Remove_Symlink_RemovesTheLinkOnly()
    {
        Directory.CreateDirectory(H("d"));
        Write("d/inner", "x");
        File.CreateSymbolicLink(H("link"), "d");
        Assert.Equal(0, Fs.Remove(P("link")));
        Assert.True(File.Exists(H("d/inner")));
        Assert.False(Path.Exists(H("link")));
    }

    // ---------------------------------------------------------------- Chmod / Chown / Truncate / Utime

    [ConformanceFact]
    public void Chmod_SetsTheMode()
    {
        Write("f", "x");
        Directory.CreateDirectory(H("d"));
        Assert.Equal(0, Fs.Chmod(P("f"), 0x9ED)); // 04755
        Assert.Equal(0x9EDu, HostMode(H("f")) & 0xFFF);
        Assert.Equal(0, Fs.Chmod(P("d"), 0x1C0)); // 0700
        Assert.Equal(0x1C0u, HostMode(H("d")) & 0xFFF);
        Assert.Equal(-ENOENT_, Fs.Chmod(P("missing"), 0x1ED));
    }

    [ConformanceFact]
    public void Chmod_OfASymlink()
    {
        string target = Write("target", "x");
        File.SetUnixFileMode(target, (UnixFileMode)0x1A4);
        File.CreateSymbolicLink(H("link"), "target");
        int r = Fs.Chmod(P("link"), 0x1C0);
        if (ChmodFollowsFinalSymlink)
        {
            Assert.Equal(0, r);
            Assert.Equal(0x1C0u, HostMode(target) & 0xFFF);
        }
        else
        {
            Assert.Equal(-EOPNOTSUPP_, r);
            Assert.Equal(0x1A4u, HostMode(target) & 0xFFF);
        }
    }

    [ConformanceFact]
    public void Chown_SetsOwner_AndMinusOneKeeps()
    {
        Write("f", "x");
        Assert.Equal(0, Fs.Chown(P("f"), 1000, 1001));
        stat host = HostLstat(H("f"));
        Assert.Equal(1000u, (uint)host.st_uid);
        Assert.Equal(1001u, (uint)host.st_gid);
        Assert.Equal(0, Fs.Chown(P("f"), uint.MaxValue, 1002));
        host = HostLstat(H("f"));
        Assert.Equal(1000u, (uint)host.st_uid);
        Assert.Equal(1002u, (uint)host.st_gid);
        Assert.Equal(-ENOENT_, Fs.Chown(P("missing"), 1, 1));
    }

    [ConformanceFact]
    public void Chown_OfASymlink_ChangesTheLinkOnly()
    {
        Write("target", "x");
        File.CreateSymbolicLink(H("link"), "target");
        Assert.Equal(0, Fs.Chown(P("link"), 1000, 1000));
        Assert.Equal(1000u, (uint)HostLstat(H("link")).st_uid);
        Assert.Equal(0u, (uint)HostLstat(H("target")).st_uid);
    }

    [ConformanceFact]
    public void Truncate_SetsTheSize()
    {
        string h = Write("f", "0123456789");
        Directory.CreateDirectory(H("d"));
        Assert.Equal(0, Fs.Truncate(P("f"), 4));
        Assert.Equal("0123", File.ReadAllText(h));
        Assert.Equal(0, Fs.Truncate(P("f"), 100));
        Assert.Equal(100, new FileInfo(h).Length);
        Assert.Equal(-EISDIR_, Fs.Truncate(P("d"), 0));
        Assert.Equal(-ENOENT_, Fs.Truncate(P("missing"), 0));
        Assert.Equal(-EINVAL_, Fs.Truncate(P("f"), -1));
    }

    [ConformanceFact]
    public void Truncate_OfASymlink()
    {
        string target = Write("target", "0123456789");
        File.CreateSymbolicLink(H("link"), "target");
        int r = Fs.Truncate(P("link"), 2);
        if (TruncateFollowsFinalSymlink)
        {
            Assert.Equal(0, r);
            Assert.Equal(2, new FileInfo(target).Length);
        }
        else
        {
            Assert.Equal(-EINVAL_, r);
            Assert.Equal(10, new FileInfo(target).Length);
        }
    }

    [ConformanceFact]
    public void Truncate_OfAFifo_NeverOpensIt()
    {
        HostMknod(H("fifo"), S_IFIFO_ | 0x1B6);
        Assert.Equal(-EINVAL_, WithDeadline(() => Fs.Truncate(P("fifo"), 0)));
    }

    [ConformanceFact]
    public void Utime_SetsTimes_OmitKeeps_AndLinksAreNotFollowed()
    {
        const long UtimeOmit = (1L << 30) - 2;
        Write("f", "x");
        Assert.Equal(0, Fs.Utime(P("f"), 1_000_000_000, 123, 1_100_000_000, 456));
        stat host = HostLstat(H("f"));
        Assert.Equal(1_000_000_000L, (long)host.st_atim.tv_sec);
        Assert.Equal(123L, (long)host.st_atim.tv_nsec);
        Assert.Equal(1_100_000_000L, (long)host.st_mtim.tv_sec);
        Assert.Equal(456L, (long)host.st_mtim.tv_nsec);
        Assert.Equal(0, Fs.Utime(P("f"), 0, UtimeOmit, 1_200_000_000, 0));
        host = HostLstat(H("f"));
        Assert.Equal(1_000_000_000L, (long)host.st_atim.tv_sec);
        Assert.Equal(1_200_000_000L, (long)host.st_mtim.tv_sec);

        File.CreateSymbolicLink(H("link"), "f");
        Assert.Equal(0, Fs.Utime(P("link"), 900_000_000, 0, 900_000_000, 0));
        Assert.Equal(900_000_000L, (long)HostLstat(H("link")).st_mtim.tv_sec);
        Assert.Equal(1_200_000_000L, (long)HostLstat(H("f")).st_mtim.tv_sec);
        Assert.Equal(-ENOENT_, Fs.Utime(P("missing"), 0, 0, 0, 0));
    }

    // ---------------------------------------------------------------- Statfs

    [ConformanceFact]
    public void Statfs_DescribesTheExportFilesystem()
    {
        Write("f", "x");
        Assert.Equal(0, Fs.Statfs("/"u8, out FileSystemStats root));
        Assert.True(root.BlockSize > 0);
        Assert.True(root.Blocks > 0);
        Assert.Equal(255u, root.NameLength);
        Assert.Equal(0, Fs.Statfs(P("f"), out FileSystemStats file));
        Assert.Equal(root.Type, file.Type);
        Assert.Equal(root.FileSystemId, file.FileSystemId);
        Assert.Equal(-ENOENT_, Fs.Statfs(P("missing"), out _));
    }

    // ---------------------------------------------------------------- xattrs

    [ConformanceFact]
    public void Xattr_SetGetListRemove()
    {
        Write("f", "x");
        Assert.Equal(0, Fs.SetXattr(P("f"), "user.k"u8, "value"u8, 0));
        Assert.Equal(5, Fs.GetXattr(P("f"), "user.k"u8, Span<byte>.Empty)); // size query
        byte[] buffer = new byte[64];
        int n = Fs.GetXattr(P("f"), "user.k"u8, buffer);
        Assert.Equal("value", Encoding.UTF8.GetString(buffer, 0, n));
        Assert.Equal(-ERANGE_, Fs.GetXattr(P("f"), "user.k"u8, buffer.AsSpan(0, 2)));

        int size = Fs.ListXattr(P("f"), Span<byte>.Empty);
        Assert.True(size >= "user.k\0".Length);
        n = Fs.ListXattr(P("f"), buffer);
        Assert.Contains("user.k", Encoding.UTF8.GetString(buffer, 0, n).Split('\0'));

        Assert.Equal(-EEXIST_, Fs.SetXattr(P("f"), "user.k"u8, "v2"u8, XATTR_CREATE_));
        Assert.Equal(-ENODATA_, Fs.SetXattr(P("f"), "user.other"u8, "v2"u8, XATTR_REPLACE_));
        Assert.Equal(0, Fs.SetXattr(P("f"), "user.k"u8, "v2"u8, XATTR_REPLACE_));
        Assert.Equal(0, Fs.RemoveXattr(P("f"), "user.k"u8));
        Assert.Equal(-ENODATA_, Fs.GetXattr(P("f"), "user.k"u8, buffer));
        Assert.Equal(-ENODATA_, Fs.RemoveXattr(P("f"), "user.k"u8));
        Assert.Equal(-ENOENT_, Fs.GetXattr(P("missing"), "user.k"u8, buffer));
        Assert.Equal(-ERANGE_, Fs.GetXattr(P("f"), ""u8, buffer));
    }

    [ConformanceFact]
    public void Xattr_OnADirectory_AndTheRoot()
    {
        Directory.CreateDirectory(H("d"));
        Assert.Equal(0, Fs.SetXattr(P("d"), "user.dir"u8, "1"u8, 0));
        byte[] buffer = new byte[16];
        Assert.Equal(1, Fs.GetXattr(P("d"), "user.dir"u8, buffer));
        Assert.True(Fs.ListXattr("/"u8, buffer) >= 0);
    }

    [ConformanceFact]
    public void Xattr_OnASymlink_ActsOnTheLink()
    {
        string target = Write("target", "x");
        File.CreateSymbolicLink(H("link"), "target");
        // user.* xattrs are not allowed on symlinks (xattr(7)): EPERM proves the link itself was addressed.
        Assert.Equal(-EPERM_, Fs.SetXattr(P("link"), "user.k"u8, "v"u8, 0));
        Assert.Equal(0, Fs.SetXattr(P("target"), "user.k"u8, "v"u8, 0));
        Assert.Equal(-ENODATA_, Fs.GetXattr(P("link"), "user.k"u8, new byte[8]));
    }

    // ---------------------------------------------------------------- escapes

    /// <summary>A file and a directory outside the export, named uniquely for this test.</summary>
    private (string File, string Directory) OutsideTargets()
    {
        string dir = Path.Combine(Outside, _base.Value);
        Directory.CreateDirectory(dir);
        string file = Path.Combine(dir, "secret");
        File.WriteAllText(file, "SECRET");
        File.SetUnixFileMode(file, (UnixFileMode)0x1A4);
        return (file, dir);
    }

    private static void AssertUntouched(string file)
    {
        Assert.Equal("SECRET", File.ReadAllText(file));
        stat st = HostLstat(file);
        Assert.Equal(0x1A4u, (uint)(ushort)st.st_mode & 0xFFF);
        Assert.Equal(0u, (uint)st.st_uid);
        Assert.Equal(1ul, (ulong)st.st_nlink);
    }

    [ConformanceFact]
    public void Escape_SymlinkToHostRoot_StaysInTheExport()
    {
        (string secret, _) = OutsideTargets();
        File.CreateSymbolicLink(H("toroot"), "/");
        // Through the link, the host path of the secret names a path inside the export, which does not exist.
        byte[] through = Encoding.UTF8.GetBytes("/" + _base.Value + "/toroot" + secret);
        Assert.Equal(-ENOENT_, Fs.Lstat(through, out _));
        Assert.Equal(-ENOENT_, Fs.Open(through, O_RDONLY | O_NOFOLLOW, out SafeFileHandle? fd));
        Assert.Null(fd);
        Assert.Equal(-ENOENT_, Fs.Chmod(through, 0x1FF));
        Assert.Equal(-ENOENT_, Fs.Truncate(through, 0));
        Assert.Equal(-ENOENT_, Fs.Remove(through));
        // "/" through the link is the export root itself.
        Assert.Equal(0, Fs.Lstat(Encoding.UTF8.GetBytes("/" + _base.Value + "/toroot/" + _base.Value), out FileStat st));
        Assert.Equal((ulong)HostLstat(H()).st_ino, st.Inode);
        AssertUntouched(secret);
    }

    [ConformanceFact]
    public void Escape_RelativeDotDotSymlink_StopsAtTheExportRoot()
    {
        (string secret, string dir) = OutsideTargets();
        // export/<base>/up -> ../../outside/<base> : two levels up from <base> is the host's temp root.
        File.CreateSymbolicLink(H("up"), "../../outside/" + Path.GetFileName(dir));
        Assert.Equal(-ENOENT_, Fs.Lstat(P("up/secret"), out _));
        Assert.Equal(-ENOENT_, Fs.Open(P("up/secret"), O_RDONLY | O_NOFOLLOW, out _));
        Assert.Equal(-ENOENT_, Fs.Create(P("up/new"), O_RDWR | O_CREAT | O_NOFOLLOW, 0x1A4, 0, 0, out _));
        Assert.Equal(-ENOENT_, Fs.Mkdir(P("up/newdir"), 0x1ED, 0, 0));
        Assert.Equal(-ENOENT_, Fs.Symlink("x"u8, P("up/newlink"), 0, 0));
        Assert.Equal(-ENOENT_, Fs.Rename(P("up/secret"), P("stolen")));
        Assert.Equal(-ENOENT_, Fs.Link(P("up/secret"), P("stolen")));
        Assert.Equal(-ENOENT_, Fs.SetXattr(P("up/secret"), "user.k"u8, "v"u8, 0));
        Assert.Single(Directory.GetFileSystemEntries(dir));
        AssertUntouched(secret);
    }

    [ConformanceFact]
    public void Escape_AbsoluteSymlinkToOutsideDirectory_AsAPathComponent()
    {
        (string secret, string dir) = OutsideTargets();
        File.CreateSymbolicLink(H("outdir"), dir);
        Assert.Equal(-ENOENT_, Fs.Lstat(P("outdir/secret"), out _));
        Assert.Equal(-ENOENT_, Fs.Open(P("outdir/secret"), O_RDONLY, out _));
        Assert.Equal(-ENOENT_, Fs.Create(P("outdir/new"), O_RDWR | O_CREAT, 0x1A4, 0, 0, out _));
        Assert.Equal(-ENOENT_, Fs.Mknod(P("outdir/fifo"), S_IFIFO_ | 0x1A4, 0, 0, 0));
        Assert.Equal(-ENOENT_, Fs.Chown(P("outdir/secret"), 1000, 1000));
        Assert.Equal(-ENOENT_, Fs.Utime(P("outdir/secret"), 0, 0, 0, 0));
        Assert.Equal(-ENOENT_, Fs.Remove(P("outdir/secret")));
        Assert.Equal(-ENOENT_, Fs.Statfs(P("outdir/secret"), out _));
        Assert.Equal(-ENOENT_, Fs.Readlink(P("outdir/secret"), new byte[16]));
        Assert.Single(Directory.GetFileSystemEntries(dir));
        AssertUntouched(secret);
    }

    [ConformanceFact]
    public void Escape_FinalSymlinkToOutsideFile_IsNeverFollowedOut()
    {
        (string secret, _) = OutsideTargets();
        File.CreateSymbolicLink(H("link"), secret);
        Assert.Equal(0, Fs.Lstat(P("link"), out FileStat st));
        Assert.True(st.IsSymlink);

        Assert.Equal(-ELOOP_, Fs.Open(P("link"), O_RDONLY | O_NOFOLLOW, out SafeFileHandle? fd));
        Assert.Equal(-ENOENT_, Fs.Open(P("link"), O_RDWR | O_TRUNC, out fd)); // followed inside the export only
        Assert.Null(fd);
        Assert.Equal(-ELOOP_, Fs.Create(P("link"), O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW, 0x1FF, 0, 0, out fd));
        Assert.Equal(-EEXIST_, Fs.Create(P("link"), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0x1FF, 0, 0, out fd));
        Assert.Null(fd);
        Assert.True(Fs.Chmod(P("link"), 0x1FF) < 0);
        Assert.True(Fs.Truncate(P("link"), 0) < 0);
        Assert.Equal(0, Fs.Chown(P("link"), 1000, 1000)); // the link itself
        Assert.Equal(0, Fs.Utime(P("link"), 0, 0, 0, 0)); // the link itself
        Assert.Equal(-EPERM_, Fs.SetXattr(P("link"), "user.k"u8, "v"u8, 0)); // the link itself
        Assert.Equal(0, Fs.Link(P("link"), P("link2"))); // the link itself
        Assert.Equal(-EEXIST_, Fs.Mkdir(P("link"), 0x1ED, 0, 0));
        Assert.Equal(-EEXIST_, Fs.Mknod(P("link"), S_IFIFO_ | 0x1A4, 0, 0, 0));
        Assert.Equal(-EEXIST_, Fs.Symlink("x"u8, P("link"), 0, 0));
        Assert.Equal(0, Fs.Rename(P("link"), P("moved")));
        Assert.Equal(0, Fs.Remove(P("moved")));
        Assert.Equal(0, Fs.Remove(P("link2")));
        AssertUntouched(secret);
        Assert.NotEqual(0L, (long)HostLstat(secret).st_mtim.tv_sec); // utime did not reach it
    }

    [ConformanceFact]
    public void SymlinkedDirectoryInsideTheExport_IsUsable()
    {
        Directory.CreateDirectory(H("real"));
        Write("real/f", "inside");
        File.CreateSymbolicLink(H("rel"), "real");
        File.CreateSymbolicLink(H("abs"), "/" + _base.Value + "/real");
        Assert.Equal(0, Fs.Lstat(P("rel/f"), out FileStat a));
        Assert.Equal(0, Fs.Lstat(P("abs/f"), out FileStat b));
        Assert.Equal(a.Inode, b.Inode);
        Assert.Equal(0, Fs.Create(P("abs/new"), O_RDWR | O_CREAT | O_NOFOLLOW, 0x1A4, 0, 0, out SafeFileHandle? fd));
        fd!.Dispose();
        Assert.True(File.Exists(H("real/new")));
    }
}

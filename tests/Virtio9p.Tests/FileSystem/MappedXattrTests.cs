using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Tests.Server;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;
using static VirtFs.ProxyFs.Protocol.Errno;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>
/// Rootless mode's security models on <see cref="LocalFileSystem"/>: QEMU's mapped-xattr on-disk format
/// (hw/9pfs/9p-local.c: user.virtfs.uid/gid/mode le32, rdev le64; special files and symlinks stored as regular
/// files) checked byte for byte on the host, trees in that format read back, and the xattr namespace rules
/// (hw/9pfs/9p-xattr-user.c, 9p-posix-acl.c).
/// </summary>
public sealed class MappedXattrTests : IDisposable
{
    private const uint IfReg = 0x8000, IfDir = 0x4000, IfLnk = 0xA000, IfChr = 0x2000, IfIfo = 0x1000;

    private readonly LocalExport _local = new(SecurityModel.MappedXattr);
    private readonly string _export;
    private readonly LocalFileSystem _fs;

    public MappedXattrTests()
    {
        _export = _local.Export;
        _fs = _local.FileSystem;
    }

    public void Dispose() => _local.Dispose();

    private string Host(string rel) => Path.Combine(_export, rel);

    private static byte[]? HostXattr(string path, string name)
    {
        try
        {
            return Xattr.Get(path, name);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static uint Le32(byte[]? b) => BinaryPrimitives.ReadUInt32LittleEndian(b ?? throw new Xunit.Sdk.XunitException("xattr missing"));

    [Fact]
    public void Create_stores_the_guest_owner_and_mode_in_xattrs_and_keeps_the_host_file_private()
    {
        Assert.Equal(0, _fs.Create("/f"u8, 0x41 /* O_WRONLY|O_CREAT */, 0x1ED /* 0755 */, 1234, 5678, out SafeFileHandle? fd));
        fd!.Dispose();
        Assert.Equal(1234u, Le32(HostXattr(Host("f"), "user.virtfs.uid")));
        Assert.Equal(5678u, Le32(HostXattr(Host("f"), "user.virtfs.gid")));
        Assert.Equal(IfReg | 0x1ED, Le32(HostXattr(Host("f"), "user.virtfs.mode")));
        Assert.Null(HostXattr(Host("f"), "user.virtfs.rdev"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Host("f")));

        Assert.Equal(0, _fs.Lstat("/f"u8, out FileStat st));
        Assert.Equal((1234u, 5678u, IfReg | 0x1ED), (st.Uid, st.Gid, st.Mode));
    }

    [Fact]
    public void Mkdir_is_a_real_directory_of_mode_0700_with_the_guest_mode_stored()
    {
        Assert.Equal(0, _fs.Mkdir("/d"u8, 0x3FF /* 01777 */, 7, 8));
        Assert.True(Directory.Exists(Host("d")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Host("d")));
        Assert.Equal(IfDir | 0x3FF, Le32(HostXattr(Host("d"), "user.virtfs.mode")));
        Assert.Equal(0, _fs.Lstat("/d"u8, out FileStat st));
        Assert.Equal((7u, 8u, IfDir | 0x3FF), (st.Uid, st.Gid, st.Mode));
    }

    [Fact]
    public void Device_nodes_and_fifos_are_regular_files_on_the_host()
    {
        ulong rdev = FileStat.MakeDevice(4, 64);
        Assert.Equal(0, _fs.Mknod("/tty"u8, IfChr | 0x1B0 /* 0660 */, rdev, 0, 5));
        Assert.Equal(0, _fs.Mknod("/fifo"u8, IfIfo | 0x1A4, 0, 1000, 1000));
        foreach (string name in new[] { "tty", "fifo" })
        {
            var info = new FileInfo(Host(name));
            Assert.False(info.Attributes.HasFlag(FileAttributes.Device));
            Assert.Equal(0, _fs.Lstat(Encoding.UTF8.GetBytes("/" + name), out _));
        }
        Assert.True(File.Exists(Host("tty")) && new FileInfo(Host("tty")).Length == 0);
        byte[] stored = HostXattr(Host("tty"), "user.virtfs.rdev")!;
        Assert.Equal(8, stored.Length);
        Assert.Equal(rdev, BinaryPrimitives.ReadUInt64LittleEndian(stored));

        Assert.Equal(0, _fs.Lstat("/tty"u8, out FileStat tty));
        Assert.Equal((IfChr | 0x1B0, rdev, 0u, 5u), (tty.Mode, tty.RawDevice, tty.Uid, tty.Gid));
        Assert.Equal(0, _fs.Lstat("/fifo"u8, out FileStat fifo));
        Assert.Equal(IfIfo | 0x1A4, fifo.Mode);
    }

    [Fact]
    public void Symlinks_are_files_holding_the_target_and_read_back_as_links()
    {
        Assert.Equal(0, _fs.Symlink("../../outside/secret"u8, "/link"u8, 1000, 100));
        Assert.False(new FileInfo(Host("link")).Attributes.HasFlag(FileAttributes.ReparsePoint));
        Assert.Equal("../../outside/secret", File.ReadAllText(Host("link")));
        Assert.Equal(IfLnk | 0x1FF, Le32(HostXattr(Host("link"), "user.virtfs.mode")));

        Assert.Equal(0, _fs.Lstat("/link"u8, out FileStat st));
        Assert.True(st.IsSymlink);
        Assert.Equal((ulong)"../../outside/secret".Length, st.Size);
        byte[] buffer = new byte[256];
        int n = _fs.Readlink("/link"u8, buffer);
        Assert.Equal("../../outside/secret", Encoding.UTF8.GetString(buffer, 0, n));
        // A plain regular file is no link.
        File.WriteAllText(Host("plain"), "x");
        Assert.Equal(-EINVAL, _fs.Readlink("/plain"u8, buffer));
    }

    [Fact]
    public void Chmod_and_chown_change_only_the_stored_attributes()
    {
        Assert.Equal(0, _fs.Mknod("/p"u8, IfIfo | 0x1A4, 0, 1, 1));
        Assert.Equal(0, _fs.Chmod("/p"u8, 0x124 /* 0444 */));
        Assert.Equal(0, _fs.Chown("/p"u8, 42, uint.MaxValue));
        Assert.Equal(0, _fs.Lstat("/p"u8, out FileStat st));
        Assert.Equal((IfIfo | 0x124, 42u, 1u), (st.Mode, st.Uid, st.Gid));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Host("p")));

        // A host file with no stored attributes keeps its type and gets a stored mode.
        File.WriteAllText(Host("h"), "x");
        Assert.Equal(0, _fs.Chmod("/h"u8, 0x1C0));
        Assert.Equal(IfReg | 0x1C0, Le32(HostXattr(Host("h"), "user.virtfs.mode")));
    }

    [Fact]
    public void A_tree_written_in_QEMUs_format_reads_the_same()
    {
        // What QEMU's local_mknod / local_set_xattrat leave for "mknod b 8 1" by uid 0 gid 6, mode 0660.
        File.WriteAllBytes(Host("sda1"), []);
        Xattr.Set(Host("sda1"), "user.virtfs.uid", Le(0u));
        Xattr.Set(Host("sda1"), "user.virtfs.gid", Le(6u));
        Xattr.Set(Host("sda1"), "user.virtfs.mode", Le(0x6000u | 0x1B0));
        byte[] rdev = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(rdev, FileStat.MakeDevice(8, 1));
        Xattr.Set(Host("sda1"), "user.virtfs.rdev", rdev);
        Assert.Equal(0, _fs.Lstat("/sda1"u8, out FileStat st));
        Assert.Equal((0x6000u | 0x1B0, 0u, 6u, FileStat.MakeDevice(8, 1)), (st.Mode, st.Uid, st.Gid, st.RawDevice));

        // A host file without xattrs shows as it is.
        File.WriteAllText(Host("plain"), "x");
        Assert.Equal(0, _fs.Lstat("/plain"u8, out FileStat plain));
        Assert.Equal(IfReg, plain.Mode & 0xF000);
    }

    [Fact]
    public void The_guest_never_sees_or_changes_user_virtfs()
    {
        Assert.Equal(0, _fs.Create("/f"u8, 0x41, 0x1A4, 1, 2, out SafeFileHandle? fd));
        fd!.Dispose();
        Assert.Equal(0, _fs.SetXattr("/f"u8, "user.color"u8, "blue"u8, 0));
        Assert.Equal(-ENODATA, _fs.GetXattr("/f"u8, "user.virtfs.uid"u8, new byte[16]));
        Assert.Equal(-EACCES, _fs.SetXattr("/f"u8, "user.virtfs.uid"u8, new byte[4], 0));
        Assert.Equal(-EACCES, _fs.RemoveXattr("/f"u8, "user.virtfs.mode"u8));
        Assert.Equal(-EOPNOTSUPP, _fs.SetXattr("/f"u8, "trusted.x"u8, "1"u8, 0));
        Assert.Equal(-EOPNOTSUPP, _fs.GetXattr("/f"u8, "security.selinux"u8, new byte[16]));

        byte[] list = new byte[256];
        int n = _fs.ListXattr("/f"u8, list);
        Assert.Equal("user.color\0", Encoding.UTF8.GetString(list, 0, n));
        Assert.Equal(n, _fs.ListXattr("/f"u8, []));
        Assert.Equal(-34 /* ERANGE */, _fs.ListXattr("/f"u8, new byte[3]));
    }

    [Fact]
    public void Posix_acls_are_kept_under_user_virtfs()
    {
        Assert.Equal(0, _fs.Mkdir("/d"u8, 0x1ED, 0, 0));
        byte[] acl = [2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff];
        Assert.Equal(0, _fs.SetXattr("/d"u8, "system.posix_acl_default"u8, acl, 0));
        Assert.Equal(acl, HostXattr(Host("d"), "user.virtfs.system.posix_acl_default"));
        byte[] back = new byte[64];
        Assert.Equal(acl.Length, _fs.GetXattr("/d"u8, "system.posix_acl_default"u8, back));
        byte[] list = new byte[256];
        int n = _fs.ListXattr("/d"u8, list);
        Assert.Contains("system.posix_acl_default", Encoding.UTF8.GetString(list, 0, n).Split('\0'));
        Assert.Equal(0, _fs.RemoveXattr("/d"u8, "system.posix_acl_default"u8));
        Assert.Equal(0, _fs.RemoveXattr("/d"u8, "system.posix_acl_access"u8)); // absent: not an error
    }

    [Fact]
    public void Open_fids_are_stated_with_the_stored_attributes_and_readdir_hides_host_types()
    {
        Assert.Equal(0, _fs.Mknod("/fifo"u8, IfIfo | 0x1A4, 0, 1000, 1000));
        var client = new P9TestClient(_fs);
        client.Handshake(0);
        client.Walk(0, 1, "fifo").Expect(T.Rwalk);
        client.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
        var attr = client.Call(T.Tgetattr, b => b.U32(1).U64(0x7ff)).Expect(T.Rgetattr);
        attr.U64();
        attr.Qid();
        Assert.Equal(IfIfo | 0x1A4, attr.U32());
        Assert.Equal(1000u, attr.U32());

        client.Walk(0, 2).Expect(T.Rwalk);
        client.Call(T.Tlopen, b => b.U32(2).U32(0)).Expect(T.Rlopen);
        var dir = client.Call(T.Treaddir, b => b.U32(2).U64(0).U32(8192)).Expect(T.Rreaddir);
        uint count = dir.U32();
        int seen = 0;
        for (int used = 0; used < count; seen++)
        {
            dir.Qid();
            dir.U64();
            byte type = dir.U8();
            string name = dir.Str();
            used += 13 + 8 + 1 + 2 + Encoding.UTF8.GetByteCount(name);
            Assert.Equal(0, type); // DT_UNKNOWN, as QEMU's local_readdir in mapped mode
        }
        Assert.True(seen >= 3);
    }

    [Fact]
    public void A_host_fifo_or_device_node_is_never_opened()
    {
        Assert.Equal(0, Mkfifo(Host("hostfifo")));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(-ENXIO, _fs.Open("/hostfifo"u8, 0 /* O_RDONLY */, out _));
        Assert.Equal(-ENXIO, _fs.Open("/hostfifo"u8, 1 /* O_WRONLY */, out _));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10)); // a fifo opened for real would block forever
        // Readlink and xattrs of it do not open it either.
        Assert.Equal(-EINVAL, _fs.Readlink("/hostfifo"u8, new byte[16]));
        Assert.Equal(0, _fs.Lstat("/hostfifo"u8, out FileStat st));
        Assert.Equal(IfIfo, st.Mode & 0xF000);
        if (Tmds.Linux.LibC.geteuid() == 0)
        {
            // /dev/null's numbers (1, 3): opening it would succeed if the type check were missing.
            Assert.Equal(0, Mknod(Host("null"), IfChr | 0x1B6, FileStat.MakeDevice(1, 3)));
            Assert.Equal(-ENXIO, _fs.Open("/null"u8, 2, out _));
        }
    }

    [Fact]
    public void None_model_makes_real_objects_and_refuses_acls()
    {
        using var fs = new LocalFileSystem(_export, SecurityModel.None);
        Assert.Equal(0, fs.Mknod("/fifo"u8, IfIfo | 0x1A4, 0, 4321, 4321));
        Assert.Equal(0, fs.Lstat("/fifo"u8, out FileStat st));
        Assert.Equal(IfIfo | 0x1A4, st.Mode);
        Assert.Equal(0, fs.Symlink("target"u8, "/l"u8, 4321, 4321));
        Assert.Equal("target", new FileInfo(Host("l")).LinkTarget);
        Assert.Equal(-EOPNOTSUPP, fs.SetXattr("/fifo"u8, "system.posix_acl_access"u8, [2, 0, 0, 0], 0));
        Assert.Null(HostXattr(Host("fifo"), "user.virtfs.mode"));
    }

    private static byte[] Le(uint v)
    {
        byte[] b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return b;
    }

    private static unsafe int Mkfifo(string path)
    {
        byte[] z = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = z)
        {
            return Tmds.Linux.LibC.mknod(p, (Tmds.Linux.mode_t)(IfIfo | 0x1B6), 0);
        }
    }

    private static unsafe int Mknod(string path, uint mode, ulong dev)
    {
        byte[] z = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = z)
        {
            return Tmds.Linux.LibC.mknod(p, (Tmds.Linux.mode_t)mode, dev);
        }
    }
}

/// <summary>Host-side xattr access for the tests (getxattr/setxattr on a path that is no symlink).</summary>
internal static unsafe class Xattr
{
    public static byte[] Get(string path, string name)
    {
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        byte[] n = Encoding.UTF8.GetBytes(name + "\0");
        byte[] value = new byte[65536];
        nint len;
        fixed (byte* pp = p)
        fixed (byte* pn = n)
        fixed (byte* pv = value)
        {
            len = global::VirtFs.Interop.Sys.Getxattr(pp, pn, pv, (nuint)value.Length);
        }
        if (len < 0)
        {
            throw new IOException($"getxattr {name}: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }
        return value[..(int)len];
    }

    public static void Set(string path, string name, byte[] value)
    {
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        byte[] n = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* pp = p)
        fixed (byte* pn = n)
        fixed (byte* pv = value)
        {
            if (global::VirtFs.Interop.Sys.Setxattr(pp, pn, pv, (nuint)value.Length, 0) < 0)
            {
                throw new IOException($"setxattr {name}: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
            }
        }
    }
}

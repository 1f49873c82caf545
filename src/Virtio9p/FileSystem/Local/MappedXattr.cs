using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace VirtFs.Virtio9p.FileSystem.Local;

/// <summary>
/// QEMU's mapped-xattr on-disk format (hw/9pfs/9p-local.c, local_set_xattrat / local_lstat): the guest's view of
/// an object in four xattrs, each present only when set: user.virtfs.uid and .gid (le32), .mode (le32, the whole
/// st_mode including the file type) and .rdev (le64, glibc's dev_t encoding). Read and written through
/// "/proc/self/fd/N" of an fd the caller pinned, so the object cannot be swapped between the check and the act.
/// Trees written by QEMU's built-in server read the same here, and the other way round.
/// </summary>
internal static unsafe class MappedXattr
{
    public static ReadOnlySpan<byte> UidName => "user.virtfs.uid\0"u8;
    public static ReadOnlySpan<byte> GidName => "user.virtfs.gid\0"u8;
    public static ReadOnlySpan<byte> ModeName => "user.virtfs.mode\0"u8;
    public static ReadOnlySpan<byte> RdevName => "user.virtfs.rdev\0"u8;

    /// <summary>The guest never sees, sets or removes these (QEMU: mp_user_*xattr).</summary>
    public static ReadOnlySpan<byte> ReservedPrefix => "user.virtfs."u8;

    /// <summary>No change to this field (QEMU's fc_uid/fc_gid/fc_mode/fc_rdev of -1).</summary>
    public const uint Keep = uint.MaxValue;

    /// <summary>Host mode of a new regular file and of a new directory (QEMU's fmode and dmode defaults): the
    /// serving user can always read, write and traverse what the guest makes, whatever mode the guest asks for.</summary>
    public const uint FileMode = 0x180; // 0600
    public const uint DirectoryMode = 0x1C0; // 0700

    /// <summary>Replaces the host's uid, gid, mode and rdev in <paramref name="attributes"/> by the stored ones,
    /// each only when its xattr is there. A stored mode without file type bits keeps the host's type.
    /// Objects that cannot carry user xattrs (symlinks, special files made on the host) are reported as they are.</summary>
    public static FileStat Apply(int fd, in FileStat attributes)
    {
        FileStat result = attributes;
        if (!result.IsRegular && !result.IsDirectory)
        {
            return result;
        }
        Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
        ReadOnlySpan<byte> path = ProcFdPath.Format(fd, proc);
        Span<byte> value = stackalloc byte[8];
        if (Read(path, UidName, value[..4])) result = result with { Uid = BinaryPrimitives.ReadUInt32LittleEndian(value) };
        if (Read(path, GidName, value[..4])) result = result with { Gid = BinaryPrimitives.ReadUInt32LittleEndian(value) };
        if (Read(path, ModeName, value[..4]))
        {
            uint mode = BinaryPrimitives.ReadUInt32LittleEndian(value);
            if ((mode & FileStat.TypeMask) == 0) mode |= result.Mode & FileStat.TypeMask;
            result = result with { Mode = mode };
        }
        if (Read(path, RdevName, value)) result = result with { RawDevice = BinaryPrimitives.ReadUInt64LittleEndian(value) };
        return result;
    }

    /// <summary>The stored mode, or -1 when there is none.</summary>
    public static long ReadMode(int fd)
    {
        Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
        Span<byte> value = stackalloc byte[4];
        return Read(ProcFdPath.Format(fd, proc), ModeName, value) ? BinaryPrimitives.ReadUInt32LittleEndian(value) : -1;
    }

    /// <summary>Stores each field that is not <see cref="Keep"/> (<paramref name="rdev"/>: ulong.MaxValue keeps).
    /// Returns 0 or -errno (EOPNOTSUPP on a host filesystem without user xattrs, EPERM on a symlink or special file).</summary>
    public static int Write(int fd, uint uid, uint gid, uint mode, ulong rdev)
    {
        Span<byte> proc = stackalloc byte[ProcFdPath.BufferSize];
        ReadOnlySpan<byte> path = ProcFdPath.Format(fd, proc);
        Span<byte> value = stackalloc byte[8];
        int r = 0;
        if (uid != Keep)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(value, uid);
            r = Set(path, UidName, value[..4]);
        }
        if (r == 0 && gid != Keep)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(value, gid);
            r = Set(path, GidName, value[..4]);
        }
        if (r == 0 && mode != Keep)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(value, mode);
            r = Set(path, ModeName, value[..4]);
        }
        if (r == 0 && rdev != ulong.MaxValue)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(value, rdev);
            r = Set(path, RdevName, value);
        }
        return r;
    }

    /// <summary>True for names in user.virtfs.* (with or without the trailing NUL).</summary>
    public static bool IsReserved(ReadOnlySpan<byte> name) => name.StartsWith(ReservedPrefix);

    /// <summary>A value of exactly the field's size; anything else (absent, longer, shorter) is not used, as QEMU
    /// uses only a read that returns bytes and never more than the field.</summary>
    private static bool Read(ReadOnlySpan<byte> procPath, ReadOnlySpan<byte> nameZ, Span<byte> value)
    {
        fixed (byte* p = procPath)
        fixed (byte* n = nameZ)
        fixed (byte* v = value)
        {
            // SAFETY: pinned, NUL-terminated path and name; the kernel writes at most value.Length bytes.
            nint len = Sys.Getxattr(p, n, v, (nuint)value.Length);
            return len == value.Length;
        }
    }

    private static int Set(ReadOnlySpan<byte> procPath, ReadOnlySpan<byte> nameZ, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = procPath)
        fixed (byte* n = nameZ)
        fixed (byte* v = value)
        {
            // SAFETY: pinned, NUL-terminated path and name; the kernel reads value.Length bytes.
            return Sys.Setxattr(p, n, v, (nuint)value.Length, 0) < 0 ? -Marshal.GetLastPInvokeError() : 0;
        }
    }
}

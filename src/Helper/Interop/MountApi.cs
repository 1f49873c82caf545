using System.Runtime.InteropServices;

namespace VirtFs.Helper.Interop;

/// <summary>The new mount API call the sandbox uses (mount_setattr, linux/mount.h), made raw: glibc 2.36 does not wrap it.</summary>
internal static class MountApi
{
    public const uint AT_EMPTY_PATH = 0x1000;
    public const uint AT_RECURSIVE = 0x8000;

    public const ulong MOUNT_ATTR_RDONLY = 0x1;
    public const ulong MOUNT_ATTR_NOSUID = 0x2;
    public const ulong MOUNT_ATTR_NODEV = 0x4;
    public const ulong MOUNT_ATTR_NOEXEC = 0x8;

    /// <summary>struct mount_attr (MOUNT_ATTR_SIZE_VER0 = 32 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MountAttr
    {
        public ulong AttrSet;
        public ulong AttrClr;
        public ulong Propagation;
        public ulong UsernsFd;
    }
}

using System.Text;
using Tmds.Linux;

namespace VirtFs.Helper;

/// <summary>
/// Start-up step of the sandbox, in the helper's private mount namespace before pivot_root: detach every kernel
/// file system mounted below the export (proc, sysfs, cgroup, debugfs, ...). They are the host's, not the guest's,
/// and proc is a way out: /proc/PID/root and /proc/PID/cwd are magic links to another process's root or working
/// directory, which path resolution follows past the namespace's root. A requester naming
/// proc/PID/root/etc/shadow, PID being a process of its own uid, got an fd to the host's file. The host's mounts do
/// not change (the namespace is private), and nothing mounted on the host later propagates in, so this one pass at
/// start is enough. Ordinary file systems below the export (a tmpfs, another disk) stay and are served.
/// </summary>
internal static unsafe class KernelMounts
{
    /// <summary>Types (mountinfo's name) of the file systems detached: each exposes the host kernel's state or
    /// other processes' roots, never the guest's files.</summary>
    private static readonly string[] Detached =
    [
        "proc", "sysfs", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "bpf", "configfs", "efivarfs",
        "pstore", "binfmt_misc", "fusectl", "nsfs",
    ];

    private const int AT_SYMLINK_NOFOLLOW = 0x100, AT_NO_AUTOMOUNT = 0x800, UMOUNT_NOFOLLOW = 8;
    private const ulong STATX_ATTR_MOUNT_ROOT = 0x2000;

    /// <summary>One line of /proc/self/mountinfo: where, which device, what type.</summary>
    internal readonly record struct MountEntry(byte[] MountPoint, uint Major, uint Minor, string Type);

    /// <summary>
    /// Detaches every mount below <paramref name="exportPath"/> (canonical, as mountinfo spells it) whose type
    /// <see cref="Detached"/> lists, deepest first, and again until a pass detaches nothing. Only mountinfo's kernel
    /// file systems are looked at, so no other mount below the export is touched (a hung NFS or FUSE mount there is
    /// not stat'ed). mountinfo lists each such mount twice after the rbind (the host's, now covered, and the copy on
    /// top) and a stacked mount may cover another: a mount point is detached only while statx shows that mount on
    /// top there (a mount root, on the entry's device), so a duplicate or covered entry is skipped. Paths stay
    /// bytes: a mount point need not be UTF-8. Returns what was detached, for the log.
    /// </summary>
    public static List<string> DetachBelow(string exportPath)
    {
        var done = new List<string>();
        byte[] prefix = Encoding.UTF8.GetBytes(exportPath.TrimEnd('/') + "/");
        for (int pass = 0; pass < 64; pass++)
        {
            bool any = false;
            foreach (MountEntry entry in Mounts().Where(m => m.MountPoint.AsSpan().StartsWith(prefix) &&
                         Array.IndexOf(Detached, m.Type) >= 0).OrderByDescending(m => m.MountPoint.Length))
            {
                if (!IsOnTop(entry)) continue;
                fixed (byte* p = entry.MountPoint)
                {
                    // SAFETY: NUL-terminated (Mounts) and pinned for the call.
                    if (LibC.umount2(p, Sys.MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                        throw new Sandbox.SandboxException($"umount2({Show(entry.MountPoint)}, MNT_DETACH)", LibC.errno);
                }
                done.Add($"{entry.Type} at {Show(entry.MountPoint)}");
                any = true;
            }
            if (!any) return done;
        }
        throw new Sandbox.SandboxException("detaching kernel file systems below the export did not settle", 0);
    }

    /// <summary>Whether the mount on top at the entry's mount point is the root of a mount on the entry's device.
    /// No automount is set off and no final symlink followed.</summary>
    private static bool IsOnTop(in MountEntry entry)
    {
        statx st;
        fixed (byte* p = entry.MountPoint)
        {
            // SAFETY: NUL-terminated and pinned; st is a local the kernel fills.
            if (LibC.statx(LibC.AT_FDCWD, p, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, LibC.STATX_TYPE, &st) < 0)
                return false; // gone with a parent detached before it
        }
        bool mountRoot = (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) == 0 // kernel before 5.8: the device decides
            || (st.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
        return mountRoot && st.stx_dev_major == entry.Major && st.stx_dev_minor == entry.Minor;
    }

    private static string Show(byte[] path) => Encoding.UTF8.GetString(path.AsSpan(0, path.Length - 1));

    /// <summary>/proc/self/mountinfo: "id parent major:minor root mountpoint options [optional...] - type source
    /// superoptions" per line. Mount points come NUL-terminated.</summary>
    private static List<MountEntry> Mounts()
    {
        var mounts = new List<MountEntry>();
        ReadOnlySpan<byte> rest = File.ReadAllBytes("/proc/self/mountinfo");
        while (!rest.IsEmpty)
        {
            int end = rest.IndexOf((byte)'\n');
            ReadOnlySpan<byte> line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? default : rest[(end + 1)..];
            if (Parse(line) is MountEntry entry) mounts.Add(entry);
        }
        return mounts;
    }

    internal static MountEntry? Parse(ReadOnlySpan<byte> line)
    {
        Span<Range> fields = stackalloc Range[64];
        int n = 0;
        for (int start = 0; start <= line.Length && n < fields.Length; n++)
        {
            int space = line[start..].IndexOf((byte)' ');
            int stop = space < 0 ? line.Length : start + space;
            fields[n] = start..stop;
            start = stop + 1;
        }
        if (n < 7) return null;
        int dash = -1;
        for (int i = 6; i < n; i++)
        {
            if (line[fields[i]].SequenceEqual("-"u8)) { dash = i; break; }
        }
        if (dash < 0 || dash + 1 >= n) return null;
        ReadOnlySpan<byte> device = line[fields[2]];
        int colon = device.IndexOf((byte)':');
        if (colon < 0 || !uint.TryParse(device[..colon], out uint major) || !uint.TryParse(device[(colon + 1)..], out uint minor))
            return null;
        return new MountEntry(Unescape(line[fields[4]]), major, minor, Encoding.UTF8.GetString(line[fields[dash + 1]]));
    }

    /// <summary>The kernel writes space, tab, newline and backslash in a mount point as \ooo; NUL-terminated.</summary>
    internal static byte[] Unescape(ReadOnlySpan<byte> field)
    {
        var bytes = new List<byte>(field.Length + 1);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                bytes.Add((byte)((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.Add(field[i]);
            }
        }
        bytes.Add(0);
        return [.. bytes];
    }

    private static bool IsOctal(ReadOnlySpan<byte> s, int at)
        => at + 2 < s.Length && s[at] is >= (byte)'0' and <= (byte)'3' && s[at + 1] is >= (byte)'0' and <= (byte)'7'
            && s[at + 2] is >= (byte)'0' and <= (byte)'7';
}

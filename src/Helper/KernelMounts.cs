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
    /// <summary>statfs f_type of the file systems detached (linux/magic.h; configfs and fusectl from their
    /// sources): each exposes the host kernel's state or other processes' roots, never the guest's files.</summary>
    private static readonly (long Magic, string Name)[] Detached =
    [
        (0x9fa0, "proc"), (0x62656572, "sysfs"), (0x27e0eb, "cgroup"), (0x63677270, "cgroup2"),
        (0x64626720, "debugfs"), (0x74726163, "tracefs"), (0x73636673, "securityfs"), (0xcafe4a11, "bpf"),
        (0x62656570, "configfs"), (0xde5e81e4, "efivarfs"), (0x6165676C, "pstore"), (0x42494e4d, "binfmt_misc"),
        (0x65735543, "fusectl"), (0x6e736673, "nsfs"),
    ];

    private const int UMOUNT_NOFOLLOW = 8;

    /// <summary>Detaches what <see cref="Detached"/> lists from every mount point strictly below
    /// <paramref name="exportPath"/> (canonical, as /proc/self/mountinfo spells it). Deepest first; repeated until
    /// a pass detaches nothing, because a detach can uncover another kernel file system mounted beneath it. The
    /// file system is checked with statfs at the path itself, so a tmpfs stacked on top of a proc is never taken
    /// for it (the proc under it is out of reach anyway). Paths stay bytes: a mount point need not be UTF-8.
    /// Returns what was detached, for the log.</summary>
    public static List<string> DetachBelow(string exportPath)
    {
        var done = new List<string>();
        byte[] prefix = Encoding.UTF8.GetBytes(exportPath.TrimEnd('/') + "/");
        for (int pass = 0; pass < 64; pass++)
        {
            bool any = false;
            foreach (byte[] mountPoint in MountPoints().Where(m => m.AsSpan().StartsWith(prefix))
                         .OrderByDescending(m => m.Length))
            {
                string? name = KernelFileSystemAt(mountPoint);
                if (name is null) continue;
                fixed (byte* p = mountPoint)
                {
                    // SAFETY: NUL-terminated (MountPoints) and pinned for the call.
                    if (LibC.umount2(p, Sys.MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                        throw new Sandbox.SandboxException($"umount2({Show(mountPoint)}, MNT_DETACH)", LibC.errno);
                }
                done.Add($"{name} at {Show(mountPoint)}");
                any = true;
            }
            if (!any) return done;
        }
        throw new Sandbox.SandboxException("detaching kernel file systems below the export did not settle", 0);
    }

    /// <summary>The kernel file system on top at <paramref name="mountPoint"/> (NUL-terminated), or null.</summary>
    private static string? KernelFileSystemAt(byte[] mountPoint)
    {
        StatFs b;
        fixed (byte* p = mountPoint)
        {
            // SAFETY: NUL-terminated and pinned; b is a local.
            if (Sys.Statfs(p, &b) < 0) return null;   // gone with a parent detached before it
        }
        foreach (var (magic, name) in Detached)
        {
            if (b.f_type == magic) return name;
        }
        return null;
    }

    private static string Show(byte[] path) => Encoding.UTF8.GetString(path.AsSpan(0, path.Length - 1));

    /// <summary>Field 5 of each line of /proc/self/mountinfo, NUL-terminated.</summary>
    private static List<byte[]> MountPoints()
    {
        var points = new List<byte[]>();
        ReadOnlySpan<byte> rest = File.ReadAllBytes("/proc/self/mountinfo");
        while (!rest.IsEmpty)
        {
            int end = rest.IndexOf((byte)'\n');
            ReadOnlySpan<byte> line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? default : rest[(end + 1)..];
            for (int field = 0; field < 4 && !line.IsEmpty; field++)
            {
                int space = line.IndexOf((byte)' ');
                line = space < 0 ? default : line[(space + 1)..];
            }
            int stop = line.IndexOf((byte)' ');
            if (stop > 0) points.Add(Unescape(line[..stop]));
        }
        return points;
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

using System.Text;
using Tmds.Linux;
using VirtFs.Helper.Interop;

namespace VirtFs.Helper;

/// <summary>
/// Start-up check: can the socket's uid reach the export by its host path? If it can, the fds the helper hands out
/// are not the only way in: a file the guest makes setuid root in the export (legitimate in the guest) could be run
/// from the host path with privilege, and the uid could hard-link its own files into the export for the helper to
/// chown. The sandbox cannot close that; the administrator does, with a 0700 parent directory (docs/security.md).
/// The check runs on a throw-away thread that takes the uid/gid as its own credentials (raw syscalls: this thread
/// only) and tries an O_PATH open of the export; the thread ends with those credentials.
/// </summary>
internal static unsafe class ExportReach
{
    /// <summary>
    /// Set once at start, before any connection: the socket's uid can reach the export by its host path. Then
    /// whatever the helper makes there is usable from the host without its mount's nosuid/nodev, so the helper
    /// refuses to make what would give that uid privilege: setuid files, setgid executables, device nodes
    /// (<see cref="PrivilegedMode"/>, <see cref="IsDevice"/>). Guests lose those only on an export set up against
    /// docs/security.md.
    /// </summary>
    public static bool Exposed { get; set; }

    /// <summary>A mode that grants, or with one more execute bit would grant, privilege to a file that is not a
    /// directory: S_ISUID or S_ISGID. (S_ISGID without group execute is not a privilege yet, but an ACL whose group
    /// entry has x makes it one, and the kernel keeps the bit when root sets the ACL.) Callers allow both on
    /// directories, where they only steer new files' group.</summary>
    public static bool PrivilegedMode(uint mode) => (mode & 0xC00) != 0;

    /// <summary>S_IFCHR or S_IFBLK.</summary>
    public static bool IsDevice(uint mode) => (mode & 0xF000) is 0x2000 or 0x6000;

    /// <summary>Whose reach the start-up check probes, or null when nobody's but root's: with -s, -u:-g (the
    /// socket's owner); with -f, -u:-g when both are given (the user QEMU or the backend runs as), else the
    /// socketpair's maker (SO_PEERCRED). A root maker (libvirt, a root launcher) tells nothing about who holds the
    /// other end later, so -f without -u/-g under a root launcher goes unchecked: docs/security.md says to pass them.
    /// </summary>
    public static (uint Uid, uint Gid)? Peer(HelperOptions options)
    {
        if (options.Uid > 0 && options.Gid >= 0) return ((uint)options.Uid, (uint)options.Gid);
        if (options.Socket is not null || options.Fd < 0) return null;
        if (Interop.SocketOptions.PeerCredentials(options.Fd, out var cred) < 0 || cred.Uid == 0) return null;
        return (cred.Uid, cred.Gid);
    }

    /// <summary>True when uid:gid, with the supplementary groups /etc/group gives the uid's user, can look the
    /// export up by its path. (A probe without those groups missed a 0750 parent whose group the user is in.)
    /// </summary>
    public static bool IsReachable(string exportPath, uint uid, uint gid)
    {
        bool reachable = false;
        uint[] groups = SupplementaryGroups(uid, gid);
        var thread = new Thread(() =>
        {
            fixed (uint* g = groups)
            {
                // SAFETY: g points to groups.Length gids, pinned for the call.
                if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_setgroups, groups.Length, g) < 0) return;
            }
            if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_setresgid, -1, (int)gid, -1) < 0) return;
            if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_setresuid, -1, (int)uid, -1) < 0) return;
            byte[] path = Encoding.UTF8.GetBytes(exportPath + "\0");
            fixed (byte* p = path)
            {
                // SAFETY: NUL-terminated, pinned.
                int fd = LibC.open(p, LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC);
                if (fd >= 0)
                {
                    reachable = true;
                    LibC.close(fd);
                }
            }
        }) { Name = "export reach check" };
        thread.Start();
        thread.Join();
        return reachable;
    }

    /// <summary>gid plus every group of /etc/group that lists the user whose uid is <paramref name="uid"/> (the
    /// user's name from /etc/passwd) and the user's primary group: what initgroups(3) would give a login.</summary>
    internal static uint[] SupplementaryGroups(uint uid, uint gid)
    {
        var groups = new HashSet<uint> { gid };
        string? user = null;
        try
        {
            foreach (string line in File.ReadLines("/etc/passwd"))
            {
                string[] f = line.Split(':');
                if (f.Length > 3 && uint.TryParse(f[2], out uint u) && u == uid)
                {
                    user = f[0];
                    if (uint.TryParse(f[3], out uint primary)) groups.Add(primary);
                    break;
                }
            }
            if (user is not null)
            {
                foreach (string line in File.ReadLines("/etc/group"))
                {
                    string[] f = line.Split(':');
                    if (f.Length > 3 && uint.TryParse(f[2], out uint g) && f[3].Split(',').Contains(user)) groups.Add(g);
                }
            }
        }
        catch (IOException)
        {
            // no passwd/group database: the probe runs with gid alone
        }
        return [.. groups];
    }
}

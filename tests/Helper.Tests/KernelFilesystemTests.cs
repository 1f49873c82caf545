using System.Diagnostics;
using Tmds.Linux;
using static VirtFs.ProxyFs.Protocol.Errno;

namespace VirtFs.Helper.Tests;

/// <summary>
/// A procfs or sysfs mounted under the export when the helper starts (an export of "/", a chroot prepared with
/// `mount --bind /proc`, a container's rootfs) is the host's, not the guest's: /proc/PID/root is a magic link to
/// another process's root, which path resolution follows out of the helper's namespace. The helper detaches such
/// mounts from its own namespace at start (the host keeps them); ordinary file systems below the export stay.
/// </summary>
public sealed class KernelFilesystemTests
{
    /// <summary>mount(8) / umount(8) -l, run to completion; their exit code.</summary>
    private static int Run(string tool, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(tool, args) { RedirectStandardError = true })!;
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>Attack: a process of the requester's uid (as a taken-over backend has) asks T_CREATE, without
    /// O_EXCL and as its own uid, for proc/PID/root/&lt;host path&gt;, PID being itself. The ptrace check passes
    /// (same uid, no capabilities) and the helper hands back an fd to the host's file, writable if that uid may
    /// write it: /etc/shadow when the requester claims uid 0.</summary>
    [Fact]
    public void A_procfs_below_the_export_is_not_a_way_out()
    {
        string outside = Directory.CreateTempSubdirectory("virtfs-outside-").FullName;
        File.SetUnixFileMode(outside, (UnixFileMode)0x1ED);
        string secret = Path.Combine(outside, "host-file");
        File.WriteAllText(secret, "host data");
        File.SetUnixFileMode(secret, (UnixFileMode)0x1A4);
        var mounted = new List<string>();
        HelperProcess? helper = null;
        // The requester's stand-in: a process as uid/gid 65534 with no capabilities, whose root is the host's.
        using var sleeper = Process.Start(new ProcessStartInfo("setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "sleep", "120"]))!;
        try
        {
            helper = HelperProcess.StartNamed((UnixFileMode)0x1C0, export =>
            {
                // Nested kernel file systems (cgroup2 inside sysfs, as on every systemd host) and one below an
                // ordinary mount that stays.
                foreach (var (fs, dir) in new[] { ("proc", "proc"), ("sysfs", "sys"), ("cgroup2", "sys/fs/cgroup"),
                             ("tmpfs", "keep"), ("proc", "keep/proc") })
                {
                    string target = Path.Combine(export, dir);
                    Directory.CreateDirectory(target);
                    Assert.True(Run("mount", "-t", fs, fs, target) == 0, $"mount -t {fs} {target}");
                    mounted.Add(target);
                }
                File.WriteAllText(Path.Combine(export, "keep", "kept"), "kept");
            });
            using var c = helper.Connect();
            byte[] path = System.Text.Encoding.UTF8.GetBytes($"/proc/{sleeper.Id}/root{secret}");
            int r = c.Create(path, LibC.O_RDONLY | LibC.O_CREAT, 0x1A4, 65534, 65534, out var fd);
            string got = "";
            if (fd is not null) using (var fs = new FileStream(fd, FileAccess.Read)) got = new StreamReader(fs).ReadToEnd();
            Assert.Equal((-ENOENT, ""), (r, got));
            Assert.Equal(-ENOENT, c.Lstat("/sys/kernel"u8, out _));
            Assert.Equal(0, c.Lstat("/keep/kept"u8, out _));
            Assert.Equal(-ENOENT, c.Lstat("/keep/proc/self"u8, out _));
            Assert.Equal(-ENOENT, c.Lstat("/sys/fs/cgroup/cgroup.procs"u8, out _));
            Assert.True(helper.WaitForStderr("detached the host's proc at ", TimeSpan.FromSeconds(10)), helper.Stderr);
            Assert.True(helper.WaitForStderr("detached the host's sysfs at ", TimeSpan.FromSeconds(10)), helper.Stderr);
            Assert.True(helper.WaitForStderr("detached the host's cgroup2 at ", TimeSpan.FromSeconds(10)), helper.Stderr);
            Assert.DoesNotContain("tmpfs", helper.Stderr);
        }
        finally
        {
            try { sleeper.Kill(); } catch (InvalidOperationException) { }
            // The host's mounts go before the export is deleted: a recursive delete must never walk into /proc.
            bool allGone = true;
            foreach (string m in Enumerable.Reverse(mounted)) allGone &= Run("umount", "-l", m) == 0;
            if (allGone) helper?.Dispose(); else helper?.Process.Kill();
            Directory.Delete(outside, recursive: true);
        }
    }

    /// <summary>A mount point with a space in its name is still found: mountinfo writes it as \040.</summary>
    [Theory]
    [InlineData("/srv/ex port/proc", "/srv/ex\\040port/proc")]
    [InlineData("/a\\b\tc", "/a\\134b\\011c")]
    [InlineData("/plain", "/plain")]
    [InlineData("/not\\8octal", "/not\\8octal")]
    public void Mountinfo_escapes_are_undone(string want, string field)
    {
        byte[] got = KernelMounts.Unescape(System.Text.Encoding.UTF8.GetBytes(field));
        Assert.Equal(want + "\0", System.Text.Encoding.UTF8.GetString(got));
    }

    [Fact]
    public void Mountinfo_lines_give_mount_point_device_and_type()
    {
        var entry = KernelMounts.Parse(
            "36 35 0:23 / /srv/ex\\040port/sys rw,nosuid shared:7 master:1 - sysfs sysfs rw"u8)!.Value;
        Assert.Equal("/srv/ex port/sys\0", System.Text.Encoding.UTF8.GetString(entry.MountPoint));
        Assert.Equal((0u, 23u, "sysfs"), (entry.Major, entry.Minor, entry.Type));
        Assert.Null(KernelMounts.Parse("36 35 0:23 / /x rw"u8));       // no separator
        Assert.Null(KernelMounts.Parse("36 35 zero / /x rw - proc proc rw"u8));
    }
}

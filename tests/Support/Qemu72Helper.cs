using System.Diagnostics;

namespace VirtFs.Tests.Support;

/// <summary>
/// Finds QEMU 7.2's virtfs-proxy-helper: $QEMU72_PROXY_HELPER, the bookworm lab (tools/lab-bookworm.sh,
/// run through the chroot's own dynamic loader so the host needs none of its libraries), or a host install.
/// </summary>
internal static class Qemu72Helper
{
    private static readonly Lazy<(string Exe, string[] Prefix)?> Found = new(Find);

    public static (string Exe, string[] Prefix)? Location => Found.Value;

    public static string? SkipReason => Location is null
        ? "needs QEMU 7.2's virtfs-proxy-helper: run tools/lab-bookworm.sh, or set QEMU72_PROXY_HELPER"
        : null;

    public static ProcessStartInfo StartInfo(params string[] args)
    {
        var (exe, prefix) = Location ?? throw new InvalidOperationException(SkipReason);
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardError = true };
        foreach (string a in prefix.Concat(args)) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>QEMU 7.2's helper serving a fresh export (root, uid/gid 0, no daemon) on a socket in a new temporary
    /// folder <paramref name="root"/>; its stderr is read so it never blocks on a full pipe.</summary>
    public static Process StartOnTempExport(string prefix, out string root, out string export, out string sock)
    {
        root = Directory.CreateTempSubdirectory(prefix).FullName;
        export = Path.Combine(root, "export");
        Directory.CreateDirectory(export);
        sock = Path.Combine(root, "s.sock");
        Process p = Process.Start(StartInfo("-n", "-p", export, "-s", sock, "-u", "0", "-g", "0"))!;
        p.BeginErrorReadLine();
        return p;
    }

    private static (string, string[])? Find()
    {
        string? env = Environment.GetEnvironmentVariable("QEMU72_PROXY_HELPER");
        if (!string.IsNullOrEmpty(env))
        {
            return File.Exists(env) ? (env, []) : null;
        }
        string cache = Environment.GetEnvironmentVariable("VIRTFS_CACHE") is { Length: > 0 } c ? c : "/var/cache/virtfs";
        string root = Path.Combine(cache, "bookworm");
        string helper = Path.Combine(root, "usr/lib/qemu/virtfs-proxy-helper");
        string loader = Path.Combine(root, "lib64/ld-linux-x86-64.so.2");
        if (File.Exists(helper) && File.Exists(loader))
        {
            string libs = string.Join(':', Path.Combine(root, "lib/x86_64-linux-gnu"), Path.Combine(root, "usr/lib/x86_64-linux-gnu"));
            return (loader, ["--library-path", libs, helper]);
        }
        const string host = "/usr/lib/qemu/virtfs-proxy-helper";
        return File.Exists(host) ? (host, []) : null;
    }
}

/// <summary>A [Fact] reported as skipped, with what it needs, when QEMU 7.2's helper is not here.</summary>
public sealed class Qemu72HelperFactAttribute : FactAttribute
{
    public Qemu72HelperFactAttribute()
    {
        if (Qemu72Helper.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

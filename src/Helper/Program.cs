using System.Diagnostics;
using Tmds.Linux;
using VirtFs.Helper;
using VirtFs.Helper.Interop;

// virtfs-proxy-helper: QEMU 7.2's proxy-FS helper, rewritten. Order: options, export check, daemon,
// socket, sandbox (fds, a private mount namespace with pivot_root into the export, umask, groups, no_new_privs, capabilities), serve.

const string DaemonChildEnv = "VIRTFS_PROXY_HELPER_DAEMON_CHILD";

var options = HelperOptions.Parse(args, out int exitCode);
if (options is null) return exitCode;
ReadOnlyExport.Enabled = options.ReadOnly;

string? exportError = CheckExport(options.Path!);
if (exportError is not null)
{
    Console.Error.WriteLine(exportError);
    return 1;
}

if (options.Daemon)
{
    if (Environment.GetEnvironmentVariable(DaemonChildEnv) != "1")
    {
        // daemon(3) forks, which a .NET process (several runtime threads) cannot survive; start a detached copy
        // of ourselves instead and exit, as daemon() leaves the parent.
        var psi = new ProcessStartInfo(Environment.ProcessPath ?? "virtfs-proxy-helper") { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(psi.FileName) == "dotnet")
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "virtfs-proxy-helper.dll"));
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment[DaemonChildEnv] = "1";
        try
        {
            using var child = Process.Start(psi);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"daemon call failed: {e.Message}");
            return 1;
        }
        return 0;
    }
    Detach();
    Log.UseSyslog();
}

if (!CleanExec.IsClean)
{
    // Step 1 of the sandbox: drop every inherited fd but the socket by exec'ing ourselves (CleanExec).
    var failure = CleanExec.Run(args, options.Fd);
    Log.Error(failure.Message);
    return 1;
}

Log.Info(options.ReadOnly ? "Started (read-only export)" : "Started");
// Connected now, while $NOTIFY_SOCKET's path is still reachable: the sandbox pivots the root away.
using var notify = VirtFs.Common.SdNotify.Open();
if (notify.Problem is not null) Log.Warn($"systemd readiness: {notify.Problem}");
if (ExportReach.Peer(options) is var (peerUid, peerGid) && ExportReach.IsReachable(options.Path!, peerUid, peerGid))
{
    ExportReach.Exposed = true;
    Log.Warn($"warning: uid {peerUid} can reach the export {options.Path} by its host path, where nosuid and " +
        "nodev do not hold: setuid/setgid executables and device nodes are refused (EPERM). Make a parent " +
        "directory of the export 0700 to serve them (docs/security.md).");
}
Microsoft.Win32.SafeHandles.SafeFileHandle sock;
try
{
    // The listening socket (-s) or the inherited connected one (--fd), owned by a handle from here on.
    sock = options.Socket is not null ? Listener.Create(options.Socket, options.Uid, options.Gid)
        : new Microsoft.Win32.SafeHandles.SafeFileHandle(options.Fd, ownsHandle: true);
    Preload.Assemblies();
    Sandbox.Enter(options.Path!, (int)sock.DangerousGetHandle(), options.ReadOnly);
}
catch (Sandbox.SandboxException e)
{
    Log.Error(e.Message);
    return 1;
}

bool getVersion = Operations.ProbeGetVersion();
notify.Ready(options.Socket is not null ? $"serving {options.Path} on {options.Socket}" : $"serving {options.Path} on fd {options.Fd}");
if (options.Socket is not null)
{
    Listener.Serve(sock, getVersion, options);
}
else
{
    new Connection(sock, "connection", getVersion,
        options.RequestTimeoutSeconds, options.Xattrs).Run();
}
Log.Info("Done");
return 0;

static string? CheckExport(string path)
{
    try
    {
        var info = new FileInfo(path);
        if (!info.Exists && !Directory.Exists(path))
            return $"invalid path \"{path}\" specified, No such file or directory";
        if ((info.Attributes & FileAttributes.Directory) == 0 || info.LinkTarget is not null && !Directory.Exists(path))
            return $"specified path \"{path}\" is not directory";
        if (info.LinkTarget is not null)
            return $"specified path \"{path}\" is not directory";
        return null;
    }
    catch (Exception e)
    {
        return $"invalid path \"{path}\" specified, {e.Message}";
    }
}

static unsafe void Detach()
{
    Sys.Setsid();
    fixed (byte* devnull = "/dev/null\0"u8)
    {
        // SAFETY: a NUL-terminated literal, pinned for the call.
        int fd = LibC.open(devnull, LibC.O_RDWR, 0);
        if (fd < 0) return;
        for (int i = 0; i < 3; i++) LibC.dup2(fd, i);
        if (fd > 2) LibC.close(fd);
    }
}

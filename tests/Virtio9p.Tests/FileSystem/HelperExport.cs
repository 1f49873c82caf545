using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using VirtFs.ProxyFs;
using VirtFs.Virtio9p.FileSystem;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>
/// The real helper (`dotnet virtfs-proxy-helper.dll -n -p EXPORT -s SOCK -u 0 -g 0`) on a temporary export,
/// reached through a ProxyClientPool and <see cref="ProxyFileSystem"/>: the production path minus the guest.
/// Started lazily, once per test class, so a skipped run never starts it.
/// </summary>
public sealed class HelperExport : IDisposable
{
    private readonly Lazy<Started> _started;

    public HelperExport() => _started = new Lazy<Started>(Start);

    public IFileSystem FileSystem => _started.Value.FileSystem;
    public string Export => _started.Value.Export;
    public string Outside => _started.Value.Outside;

    private sealed record Started(string Root, string Export, string Outside, Process Process, ProxyClientPool Pool,
        ProxyFileSystem FileSystem, StringBuilder Stderr);

    private static Started Start()
    {
        string dll = HelperLocator.DllPath ?? throw new InvalidOperationException(HelperLocator.SkipReason);
        string root = Directory.CreateTempSubdirectory("localfs-helper-").FullName;
        string export = Path.Combine(root, "export");
        string outside = Path.Combine(root, "outside");
        Directory.CreateDirectory(export);
        Directory.CreateDirectory(outside);
        string socket = Path.Combine(root, "helper.sock");
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardError = true };
        foreach (string a in new[] { dll, "-n", "-p", export, "-s", socket, "-u", "0", "-g", "0" }) psi.ArgumentList.Add(a);
        Process process = Process.Start(psi)!;
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        // Ready once the socket exists and the sandbox is complete (no_new_privs is set last).
        while (!File.Exists(socket) || !SandboxReady(process.Id))
        {
            if (process.HasExited) throw new InvalidOperationException("helper exited: " + Text(stderr));
            if (clock.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException("helper did not start: " + Text(stderr));
            Thread.Sleep(20);
        }
        var pool = new ProxyClientPool(() => ProxyClient.Connect(socket), 2);
        return new Started(root, export, outside, process, pool, new ProxyFileSystem(pool, NullLogger.Instance), stderr);
    }

    private static string Text(StringBuilder sb) { lock (sb) return sb.ToString(); }

    private static bool SandboxReady(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/status").Contains("NoNewPrivs:\t1"); }
        catch (IOException) { return false; }
    }

    public void Dispose()
    {
        if (!_started.IsValueCreated) return;
        Started s = _started.Value;
        s.Pool.Dispose();
        try { if (!s.Process.HasExited) { s.Process.Kill(); s.Process.WaitForExit(5000); } } catch (InvalidOperationException) { }
        s.Process.Dispose();
        try { Directory.Delete(s.Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A temporary export (and a sibling "outside" folder for escape targets) with a LocalFileSystem on it.</summary>
public sealed class LocalExport : IDisposable
{
    public LocalExport()
        : this(SecurityModel.Passthrough)
    {
    }

    /// <summary>With <paramref name="model"/>: the rootless mode's security models (issue 16).</summary>
    internal LocalExport(SecurityModel model)
    {
        Root = Directory.CreateTempSubdirectory("localfs-").FullName;
        Export = Path.Combine(Root, "export");
        Outside = Path.Combine(Root, "outside");
        Directory.CreateDirectory(Export);
        Directory.CreateDirectory(Outside);
        FileSystem = new LocalFileSystem(Export, model);
    }

    public string Root { get; }
    public string Export { get; }
    public string Outside { get; }
    public LocalFileSystem FileSystem { get; }

    public void Dispose()
    {
        FileSystem.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

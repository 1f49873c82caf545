using System.Diagnostics;
using VirtFs.ProxyFs;
using VirtFs.ProxyFs.Protocol;

namespace VirtFs.Helper.Tests;

/// <summary>Runs the real helper ($PROXY_HELPER_BINARY, else the apphost built next to us, else `dotnet virtfs-proxy-helper.dll`)
/// on a temporary export, with -n so its log goes to stderr.</summary>
internal sealed class HelperProcess : IDisposable
{
    public string Root { get; }
    public string Export { get; }
    public string SocketPath { get; }
    public Process Process { get; }
    private readonly System.Text.StringBuilder _stderr = new();

    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Waits until the helper's stderr, read asynchronously, contains <paramref name="text"/>. A line the
    /// helper wrote before it became ready can reach us later: the reader runs on the thread pool, which the
    /// test host's blocking tests can keep busy.</summary>
    public bool WaitForStderr(string text, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!Stderr.Contains(text, StringComparison.Ordinal))
        {
            if (sw.Elapsed > timeout) return false;
            Thread.Sleep(10);
        }
        return true;
    }

    private HelperProcess(string root, string export, string socketPath, Process process)
    {
        Root = root; Export = export; SocketPath = socketPath; Process = process;
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        process.BeginErrorReadLine();
    }

    public static ProcessStartInfo StartInfo(params string[] args)
    {
        string dir = AppContext.BaseDirectory;
        string aot = Path.Combine(dir, "virtfs-proxy-helper");
        ProcessStartInfo psi;
        // PROXY_HELPER_BINARY points at a published (Native AOT) helper to test that build instead.
        string? published = Environment.GetEnvironmentVariable("PROXY_HELPER_BINARY");
        if (!string.IsNullOrEmpty(published)) aot = published;
        if (File.Exists(aot) && Environment.GetEnvironmentVariable("PROXY_TEST_USE_DLL") != "1")
        {
            psi = new ProcessStartInfo(aot);
        }
        else
        {
            psi = new ProcessStartInfo("dotnet");
            psi.ArgumentList.Add(Path.Combine(dir, "virtfs-proxy-helper.dll"));
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.UseShellExecute = false;
        psi.RedirectStandardError = true;
        return psi;
    }

    public static HelperProcess StartNamed(params string[] extraArgs) => StartNamed(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, extraArgs);

    /// <summary>Starts the helper on rootDir/export, rootDir with <paramref name="rootMode"/> (0700 keeps the export
    /// out of other users' reach, as docs/security.md asks).</summary>
    public static HelperProcess StartNamed(UnixFileMode rootMode, params string[] extraArgs)
        => StartNamed(rootMode, prepare: null, extraArgs);

    /// <summary>As above; <paramref name="prepare"/> gets the export's path before the helper starts (to mount
    /// something under it, say).</summary>
    public static HelperProcess StartNamed(UnixFileMode rootMode, Action<string>? prepare, params string[] extraArgs)
    {
        string root = Directory.CreateTempSubdirectory("proxy-helper-").FullName;
        File.SetUnixFileMode(root, rootMode);
        string export = Path.Combine(root, "export");
        Directory.CreateDirectory(export);
        prepare?.Invoke(export);
        string sock = Path.Combine(root, "helper.sock");
        var p = Process.Start(StartInfo(["-n", "-p", export, "-s", sock, "-u", "0", "-g", "0", .. extraArgs]))!;
        var h = new HelperProcess(root, export, sock, p);
        var sw = Stopwatch.StartNew();
        while (!File.Exists(sock) || !SandboxReady(p.Id))
        {
            if (p.HasExited) throw new InvalidOperationException("helper exited: " + h.Stderr);
            if (sw.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException("helper did not start: " + h.Stderr);
            Thread.Sleep(20);
        }
        return h;
    }

    /// <summary>The sandbox is complete once the main thread's capabilities are dropped.</summary>
    private static bool SandboxReady(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/status").Contains("NoNewPrivs:\t1");
        }
        catch (IOException) { return false; }
    }

    public ProxyClient Connect() => ProxyClient.Connect(SocketPath);

    /// <summary>A proxy header for a message of <paramref name="type"/> with a body of <paramref name="size"/> bytes.</summary>
    public static byte[] Header(ProxyRequestType type, int size)
    {
        var h = new byte[8];
        new ProxyHeader((uint)type, (uint)size).Write(h);
        return h;
    }

    /// <summary>Sends <paramref name="bytes"/> on a new connection and asserts the helper closes it without an
    /// answer (what a message outside the protocol gets).</summary>
    public void SendRawExpectingClose(byte[] bytes)
    {
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        s.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(SocketPath));
        s.Send(bytes);
        s.ReceiveTimeout = 10000;
        var buf = new byte[16];
        try
        {
            Xunit.Assert.Equal(0, s.Receive(buf)); // the helper closed it without answering
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionReset)
        {
            // Closed with our unread bytes still queued: the kernel answers with a reset. Closed all the same.
        }
    }

    public void Dispose()
    {
        try { if (!Process.HasExited) { Process.Kill(); Process.WaitForExit(5000); } } catch { }
        Process.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch { }
    }
}

using System.Diagnostics;
using Tmds.Linux;
using VirtFs.ProxyFs;

namespace VirtFs.Helper.Tests;

/// <summary>-f mode: the helper serves one inherited socket (one end of a socketpair) and exits when it closes.</summary>
public sealed class FdModeTests
{
    [Fact]
    public unsafe void Serves_an_inherited_socketpair_and_exits_on_close()
    {
        string root = Directory.CreateTempSubdirectory("proxy-fd-").FullName;
        try
        {
            string export = Path.Combine(root, "export");
            Directory.CreateDirectory(export);
            int* sv = stackalloc int[2];
            // Our end is CLOEXEC; the helper's end must survive exec.
            Assert.Equal(0, LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM, 0, sv));
            LibC.fcntl(sv[0], LibC.F_SETFD, LibC.FD_CLOEXEC);
            var psi = HelperProcess.StartInfo("-n", "-p", export, "-f", sv[1].ToString());
            using var p = Process.Start(psi)!;
            p.BeginErrorReadLine();
            LibC.close(sv[1]);
            using (var c = ProxyClient.FromFd(sv[0]))
            {
                Assert.Equal(0, c.Mkdir("/viafd"u8, 0x1ED /* 0755 */, 1000, 1000));
                Assert.Equal(0, c.Create("/viafd/f"u8, LibC.O_CREAT | LibC.O_RDWR, 0x180 /* 0600 */, 1000, 1000, out var fd));
                using (var fs = new FileStream(fd!, FileAccess.ReadWrite)) fs.Write("x"u8);
                Assert.Equal("x", File.ReadAllText(Path.Combine(export, "viafd/f")));
            }
            Assert.True(p.WaitForExit(20000), "helper did not exit after its socket closed");
            Assert.Equal(0, p.ExitCode);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Attack: QEMU 7.2 (sock_fd=) runs as a user who can reach the export by its host path; through the
    /// helper it makes a root setuid file, then runs it from the host path, where nosuid does not hold. The reach
    /// check ran only with -s, so -f served the setuid bit. With -f, -u:-g name that user.</summary>
    [Fact]
    public unsafe void The_reach_check_covers_fd_mode()
    {
        string root = Directory.CreateTempSubdirectory("proxy-fd-").FullName;
        try
        {
            File.SetUnixFileMode(root, (UnixFileMode)0x1ED); // 0755: uid 65534 reaches the export
            string export = Path.Combine(root, "export");
            Directory.CreateDirectory(export);
            int* sv = stackalloc int[2];
            Assert.Equal(0, LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM, 0, sv));
            LibC.fcntl(sv[0], LibC.F_SETFD, LibC.FD_CLOEXEC);
            var psi = HelperProcess.StartInfo("-n", "-p", export, "-f", sv[1].ToString(), "-u", "65534", "-g", "65534");
            psi.RedirectStandardError = true;
            using var p = Process.Start(psi)!;
            var stderr = new System.Text.StringBuilder();
            p.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
            p.BeginErrorReadLine();
            LibC.close(sv[1]);
            using (var c = ProxyClient.FromFd(sv[0]))
            {
                Assert.Equal(0, c.Create("/f"u8, LibC.O_CREAT | LibC.O_WRONLY, 0x1ED, 0, 0, out var fd));
                fd!.Dispose();
                Assert.Equal(-VirtFs.ProxyFs.Protocol.Errno.EPERM, c.Chmod("/f"u8, 0x9ED)); // 04755
            }
            Assert.True(p.WaitForExit(20000), "helper did not exit after its socket closed");
            p.WaitForExit(); // and its stderr read to the end (the timed wait does not wait for the async reader)
            lock (stderr) Assert.Contains("uid 65534 can reach the export", stderr.ToString());
            Assert.Equal(0x1EDu, HostStat.Of(Path.Combine(export, "f")).Mode & 0xFFF);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Cli_usage_errors_exit_2_with_one_line()
    {
        Assert.Equal(2, Run("-n", "-p", "/tmp"));                         // no socket or fd
        Assert.Equal(2, Run("-n", "-p", "/tmp", "-s", "/tmp/x.sock"));    // no -u/-g
        Assert.Equal(2, Run("-n", "-p", "/tmp", "-s", "/tmp/x", "-f", "3", "-u", "0", "-g", "0"));
        Assert.Equal(2, Run("-x"));
        Assert.Equal(2, Run("--no-such-option"));
        Assert.Equal(2, Run("--readonly=yes"));
        Assert.Equal(2, Run("-p"));
        string error = RunOutput(out _, "--bogus").Error;
        Assert.Equal("virtfs-proxy-helper: unrecognized option '--bogus' (try --help)\n", error);
        // Not usage errors: a bad export is a failure (1), as in QEMU's helper.
        Assert.Equal(1, Run("-n", "-p", "/nonexistent-dir-xyz", "-f", "3"));
        Assert.Equal(1, Run("-n", "-p", "/etc/passwd", "-f", "3"));
    }

    [Fact]
    public void Help_lists_every_option_and_version_prints_one_line()
    {
        string help = RunOutput(out int code, "--help").Output;
        Assert.Equal(0, code);
        foreach (string option in new[] { "--path", "--fd", "--socket", "--uid", "--gid", "--nodaemon", "--readonly",
            "--allow-xattr", "--request-timeout", "--version", "--help" })
        {
            Assert.Contains(option, help);
        }
        string version = RunOutput(out code, "-V").Output;
        Assert.Equal(0, code);
        Assert.Matches(@"^virtfs-proxy-helper \d+\.\d+\.\d+\n$", version);
    }

    private static int Run(params string[] args)
    {
        RunOutput(out int code, args);
        return code;
    }

    private static (string Output, string Error) RunOutput(out int exitCode, params string[] args)
    {
        var psi = HelperProcess.StartInfo(args);
        psi.RedirectStandardOutput = true;
        using var p = Process.Start(psi)!;
        Task<string> output = p.StandardOutput.ReadToEndAsync();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        exitCode = p.ExitCode;
        return (output.Result, error);
    }
}

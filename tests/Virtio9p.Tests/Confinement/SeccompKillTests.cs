using System.Diagnostics;

namespace VirtFs.Virtio9p.Tests.Confinement;

/// <summary>
/// The filter as the kernel enforces it: a child process (tests/Support/SeccompProbe) applies the backend's
/// confinement to itself, makes an allowed call, then one outside the allowlist (unshare(0)). Run as an unprivileged
/// user when the tests run as root, like the backend in the field: the confinement refuses to go on while threads
/// the runtime started before Main still hold capabilities.
/// </summary>
public class SeccompKillTests
{
    private const int SigSys = 31;

    [Fact]
    public void Kill_mode_kills_the_process_on_a_syscall_outside_the_allowlist()
    {
        (int exit, string output) = RunProbe("kill");
        Assert.Contains("NoNewPrivs:\t1", output);
        Assert.Contains("Seccomp:\t2", output);
        Assert.Contains("CapEff:\t0000000000000000", output);
        Assert.Contains("allowed-ok: True", output);
        Assert.DoesNotContain("survived", output);
        Assert.Equal(128 + SigSys, exit);
    }

    [Fact]
    public void Log_mode_lets_the_call_run()
    {
        (int exit, string output) = RunProbe("log");
        Assert.Contains("Seccomp:\t2", output);
        Assert.Contains("survived: 0", output);
        Assert.Equal(0, exit);
    }

    [Fact]
    public void None_mode_sets_no_new_privs_without_a_filter()
    {
        (int exit, string output) = RunProbe("none");
        Assert.Contains("NoNewPrivs:\t1", output);
        Assert.Contains("Seccomp:\t0", output);
        Assert.Contains("survived: 0", output);
        Assert.Equal(0, exit);
    }

    [WithCapabilitiesFact]
    public void A_process_whose_other_threads_hold_capabilities_refuses_to_start()
    {
        (int exit, string output) = RunProbe("kill", asRoot: true);
        Assert.Contains("confinement-failed: thread", output);
        Assert.Equal(3, exit);
    }

    private static (int Exit, string Output) RunProbe(string mode, bool asRoot = false)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "VirtFs.SeccompProbe.dll");
        Assert.True(File.Exists(dll), $"{dll} missing: the test project references tests/Support/SeccompProbe");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "/usr/bin/dotnet";
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // The filter refuses executable memory: no re-compilation after it (the probe compiles its code up front).
        psi.Environment["DOTNET_TieredCompilation"] = "0";
        if (Environment.UserName == "root" && !asRoot)
        {
            // nobody: the probe needs no identity of its own, only to be without capabilities.
            psi.FileName = "setpriv";
            foreach (string a in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "--", dotnet })
            {
                psi.ArgumentList.Add(a);
            }
        }
        else
        {
            psi.FileName = dotnet;
        }
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add(mode);
        using Process p = Process.Start(psi)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "probe did not finish");
        // Only what the probe printed after confining itself.
        string after = string.Join('\n', output.Split('\n').Where(l => !l.StartsWith("before ", StringComparison.Ordinal)));
        return (p.ExitCode, after + stderr.Result);
    }
}

/// <summary>A [Fact] reported as skipped unless the tests run with capabilities (root in the lab).</summary>
public sealed class WithCapabilitiesFactAttribute : FactAttribute
{
    public WithCapabilitiesFactAttribute()
    {
        string? capEff = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        if (capEff is null || capEff.AsSpan(7).Trim().TrimStart('0').IsEmpty)
        {
            Skip = "needs capabilities (run the tests as root)";
        }
    }
}

using Tmds.Linux;
using VirtFs.Virtio9p.Confinement;

// Usage: VirtFs.SeccompProbe kill|log|none   (run with DOTNET_TieredCompilation=0, see below)
// Prints what the kernel says about this process after the backend's confinement, makes an allowed syscall, then
// unshare(0): not on the allowlist, and a no-op if it runs. Exit 0 when it survived; SIGSYS when the filter killed it.
//
// Unlike the Native AOT backend this probe runs on the JIT, which needs new executable pages, and the filter
// refuses PROT_EXEC. So everything that runs after the filter runs once before it (compiled then), and the test
// turns off tiered compilation (no later re-compilation in the background).
SeccompMode mode = args.Length == 1 && Enum.TryParse(args[0], ignoreCase: true, out SeccompMode m)
    ? m : throw new ArgumentException("usage: VirtFs.SeccompProbe kill|log|none");
Report(warmUp: true);
try
{
    Sandbox.Apply(mode);
}
catch (ConfinementException e)
{
    Console.WriteLine($"confinement-failed: {e.Message}");
    return 3;
}
Report(warmUp: false);
return 0;

static void Report(bool warmUp)
{
    const int SYS_getppid = 110, SYS_unshare = 272;
    string prefix = warmUp ? "before " : "";
    foreach (string line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith("NoNewPrivs:", StringComparison.Ordinal) || line.StartsWith("Seccomp:", StringComparison.Ordinal)
            || line.StartsWith("CapEff:", StringComparison.Ordinal))
        {
            Console.WriteLine(prefix + line);
        }
    }
    Console.WriteLine($"{prefix}allowed-ok: {(long)(ssize_t)LibC.syscall(SYS_getppid, 0) > 0}");
    // Before the filter: the same call with the same signature, to an allowed number.
    long r = (ssize_t)LibC.syscall(warmUp ? SYS_getppid : SYS_unshare, 0);
    Console.WriteLine($"{prefix}survived: {(warmUp ? 0 : r)}");
}

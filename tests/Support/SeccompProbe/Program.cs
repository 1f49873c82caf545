using Tmds.Linux;
using VirtFs.Virtio9p.Confinement;

// Usage: VirtFs.SeccompProbe kill|log|none
// Prints what the kernel says about this process after the backend's confinement, makes an allowed syscall, then
// unshare(0): not on the allowlist, and a no-op if it runs. Exit 0 when it survived; SIGSYS when the filter killed it.
SeccompMode mode = args.Length == 1 && Enum.TryParse(args[0], ignoreCase: true, out SeccompMode m)
    ? m : throw new ArgumentException("usage: VirtFs.SeccompProbe kill|log|none");
try
{
    Sandbox.Apply(mode);
}
catch (ConfinementException e)
{
    Console.WriteLine($"confinement-failed: {e.Message}");
    return 3;
}
foreach (string line in File.ReadLines("/proc/self/status"))
{
    if (line.StartsWith("NoNewPrivs:", StringComparison.Ordinal) || line.StartsWith("Seccomp:", StringComparison.Ordinal)
        || line.StartsWith("CapEff:", StringComparison.Ordinal))
    {
        Console.WriteLine(line);
    }
}
const int SYS_getppid = 110, SYS_unshare = 272;
Console.WriteLine($"allowed-ok: {(long)(ssize_t)LibC.syscall(SYS_getppid) > 0}");
long r = (ssize_t)LibC.syscall(SYS_unshare, 0);
Console.WriteLine($"survived: {r}");
return 0;

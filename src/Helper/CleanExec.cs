using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using VirtFs.Helper.Interop;

namespace VirtFs.Helper;

/// <summary>
/// Closing inherited fds, done so nothing can be missed: mark every fd from 3 up close-on-exec
/// (close_range(2) CLOSE_RANGE_CLOEXEC), clear the flag on the one socket we keep, and exec ourselves again.
/// The kernel then closes every inherited fd, and the .NET runtime's own ones, at the exec; the new image starts
/// with stdin/out/err and the socket only. (Telling inherited fds from the runtime's in-process is unreliable:
/// the runtime opens its own, and inherited ones may already carry FD_CLOEXEC.)
/// </summary>
internal static unsafe class CleanExec
{
    public const string MarkerEnv = "VIRTFS_PROXY_HELPER_CLEAN";

    public static bool IsClean => Environment.GetEnvironmentVariable(MarkerEnv) == "1";

    /// <summary>Returns only on failure, with the step's error.</summary>
    public static Sandbox.SandboxException Run(string[] args, int keepFd)
    {
        if ((long)(ssize_t)LibC.syscall(Syscalls.SYS_close_range, 3, -1, Syscalls.CLOSE_RANGE_CLOEXEC) < 0)
            return new Sandbox.SandboxException("close_range(CLOSE_RANGE_CLOEXEC)", LibC.errno);
        if (keepFd >= 0 && LibC.fcntl(keepFd, LibC.F_SETFD, 0) < 0)
            return new Sandbox.SandboxException($"keep socket fd {keepFd} across exec", LibC.errno);

        string exe = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var argv = new List<string> { exe };
        // Under `dotnet virtfs-proxy-helper.dll` (tests) the host needs the assembly path again.
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
            argv.Add(Path.Combine(AppContext.BaseDirectory, "virtfs-proxy-helper.dll"));
        argv.AddRange(args);
        var env = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            if ((string)e.Key != MarkerEnv) env.Add($"{e.Key}={e.Value}");
        }
        env.Add(MarkerEnv + "=1");

        byte** cargv = ToCStrings(argv);
        byte** cenv = ToCStrings(env);
        Sys.Execve(cargv[0], cargv, cenv);
        return new Sandbox.SandboxException("execve(self)", Marshal.GetLastPInvokeError());
    }

    /// <summary>NULL-terminated array of NUL-terminated strings in native memory (never freed: on success the
    /// image is replaced, on failure the process exits).</summary>
    private static byte** ToCStrings(List<string> values)
    {
        // SAFETY: array has Count + 1 pointer slots and each string bytes.Length + 1 bytes; every write below
        // stays inside its allocation, and the memory is never freed (it must outlive execve).
        byte** array = (byte**)NativeMemory.Alloc((nuint)(values.Count + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < values.Count; i++)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(values[i]);
            byte* s = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
            bytes.CopyTo(new Span<byte>(s, bytes.Length));
            s[bytes.Length] = 0;
            array[i] = s;
        }
        array[values.Count] = null;
        return array;
    }
}

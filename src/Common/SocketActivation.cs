namespace VirtFs.Common;

/// <summary>systemd socket activation (sd_listen_fds(3)): LISTEN_PID is our pid and LISTEN_FDS counts the
/// sockets passed from fd 3 on. Only one socket makes sense for a backend of one device.</summary>
public static class SocketActivation
{
    public const int FirstFd = 3;

    /// <summary>True when systemd passed exactly one socket to this process (fd 3); <paramref name="problem"/>
    /// says why not when it passed something else.</summary>
    public static bool Available(out string? problem)
    {
        problem = null;
        string? pid = Environment.GetEnvironmentVariable("LISTEN_PID");
        string? count = Environment.GetEnvironmentVariable("LISTEN_FDS");
        if (pid is null || count is null || pid != Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            return false;
        }
        if (count != "1")
        {
            problem = $"LISTEN_FDS={count}: expected exactly one socket";
            return false;
        }
        return true;
    }

    /// <summary>Forgets the variables so no child takes the socket for its own.</summary>
    public static void Consume()
    {
        Environment.SetEnvironmentVariable("LISTEN_PID", null);
        Environment.SetEnvironmentVariable("LISTEN_FDS", null);
        Environment.SetEnvironmentVariable("LISTEN_FDNAMES", null);
    }
}

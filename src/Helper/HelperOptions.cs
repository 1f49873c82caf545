namespace VirtFs.Helper;

/// <summary>Command line as QEMU 7.2's virtfs-proxy-helper (getopt_long "p:nh?f:s:u:g:").</summary>
internal sealed class HelperOptions
{
    public string? Path;
    public int Fd = -1;
    public string? Socket;
    public int Uid = -1;
    public int Gid = -1;
    public bool Daemon = true;

    public const string Usage =
        "usage: virtfs-proxy-helper\n" +
        " -p|--path <path> 9p path to export\n" +
        " {-f|--fd <socket-descriptor>} socket file descriptor to be used\n" +
        " {-s|--socket <socketname> socket file used for communication\n" +
        " \t-u|--uid <uid> -g|--gid <gid>} - uid:gid combination to give  access to this socket\n" +
        " \tNote: -s & -f can not be used together\n" +
        " [-n|--nodaemon] Run as a normal program\n";

    /// <summary>Parses; on error writes the message and usage to stderr and sets the exit code QEMU's helper uses
    /// (1 = EXIT_FAILURE, 255 = its "return -1" when socket or path is missing).</summary>
    public static HelperOptions? Parse(string[] args, out int exitCode)
    {
        exitCode = 0;
        var o = new HelperOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            char opt;
            string? value = null;
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                string name = a[2..];
                int eq = name.IndexOf('=');
                if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
                opt = name switch
                {
                    "path" => 'p', "fd" => 'f', "socket" => 's', "uid" => 'u', "gid" => 'g',
                    "nodaemon" => 'n', "help" => 'h', _ => '?',
                };
            }
            else if (a.Length >= 2 && a[0] == '-')
            {
                opt = a[1];
                if (a.Length > 2) value = a[2..];
            }
            else
            {
                // getopt permutes non-options to the end and ignores them; QEMU's helper then ignores them too.
                continue;
            }

            if (opt is 'p' or 'f' or 's' or 'u' or 'g' && value is null)
            {
                if (i + 1 >= args.Length) return Fail($"option requires an argument -- '{opt}'", 1, out exitCode);
                value = args[++i];
            }
            switch (opt)
            {
                case 'p': o.Path = value; break;
                case 'n': o.Daemon = false; break;
                case 'f': o.Fd = Atoi(value!); break;
                case 's': o.Socket = value; break;
                case 'u': o.Uid = Atoi(value!); break;
                case 'g': o.Gid = Atoi(value!); break;
                default: return Fail(null, 1, out exitCode);
            }
        }

        if ((o.Socket is null && o.Fd == -1) || o.Path is null)
            return Fail("socket, socket descriptor or path not specified", 255, out exitCode);
        if (o.Socket is not null && o.Fd != -1)
            return Fail("both named socket and socket descriptor specified", 1, out exitCode);
        if (o.Socket is not null && (o.Uid == -1 || o.Gid == -1))
            return Fail("owner uid:gid not specified, owner uid:gid specifies who can access the socket file", 1, out exitCode);
        if (o.Socket is null && o.Fd < 0)
            return Fail("invalid socket descriptor", 1, out exitCode);
        return o;
    }

    /// <summary>atoi(3): leading digits, 0 when none (QEMU's helper uses atoi for -f, -u, -g).</summary>
    private static int Atoi(string s)
    {
        s = s.TrimStart();
        int i = 0, sign = 1;
        if (i < s.Length && (s[i] == '-' || s[i] == '+')) { sign = s[i] == '-' ? -1 : 1; i++; }
        long v = 0;
        for (; i < s.Length && char.IsAsciiDigit(s[i]) && v <= int.MaxValue; i++) v = v * 10 + (s[i] - '0');
        return (int)Math.Clamp(sign * v, int.MinValue, int.MaxValue);
    }

    private static HelperOptions? Fail(string? message, int code, out int exitCode)
    {
        if (message is not null) Console.Error.WriteLine(message);
        Console.Error.Write(Usage);
        exitCode = code;
        return null;
    }
}

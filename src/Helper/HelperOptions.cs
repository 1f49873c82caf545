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
    /// <summary>--request-timeout: seconds a request may take to arrive once its first byte has, and a reply
    /// write may block.</summary>
    public int RequestTimeoutSeconds = 10;
    /// <summary>--allow-xattr: extra xattr name prefixes served besides user.* and the POSIX ACLs.</summary>
    public List<string> AllowedXattrPrefixes = new();

    public XattrPolicy Xattrs => _xattrs ??= new XattrPolicy(AllowedXattrPrefixes);
    private XattrPolicy? _xattrs;

    public const string Usage =
        "usage: virtfs-proxy-helper\n" +
        " -p|--path <path> 9p path to export\n" +
        " {-f|--fd <socket-descriptor>} socket file descriptor to be used\n" +
        " {-s|--socket <socketname> socket file used for communication\n" +
        " \t-u|--uid <uid> -g|--gid <gid>} - uid:gid combination to give  access to this socket\n" +
        " \tNote: -s & -f can not be used together\n" +
        " [-n|--nodaemon] Run as a normal program\n" +
        " [--allow-xattr <prefix>] also serve xattrs named <prefix>* (e.g. security.);\n" +
        " \tby default only user.* and system.posix_acl_{access,default}; repeatable\n" +
        " [--request-timeout <seconds>] a request must arrive whole this long after its\n" +
        " \tfirst byte, and a reply write may block this long (default 10)\n";

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
                if (name is "allow-xattr" or "request-timeout")
                {
                    if (value is null)
                    {
                        if (i + 1 >= args.Length) return Fail($"option '--{name}' requires an argument", 1, out exitCode);
                        value = args[++i];
                    }
                    if (name == "allow-xattr")
                    {
                        // "security" and "security." both mean the security.* namespace; an empty prefix would allow all.
                        string prefix = value.EndsWith('.') ? value : value + ".";
                        if (prefix.Length < 2) return Fail("--allow-xattr needs a name prefix such as security.", 1, out exitCode);
                        o.AllowedXattrPrefixes.Add(prefix);
                    }
                    else
                    {
                        if (!int.TryParse(value, out int seconds) || seconds < 1 || seconds > 3600)
                            return Fail("--request-timeout must be 1..3600 seconds", 1, out exitCode);
                        o.RequestTimeoutSeconds = seconds;
                    }
                    continue;
                }
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

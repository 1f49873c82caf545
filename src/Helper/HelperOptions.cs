namespace VirtFs.Helper;

/// <summary>Command line as QEMU 7.2's virtfs-proxy-helper (getopt_long "p:nh?f:s:u:g:"), plus long options for what
/// it grew (read-only, xattr policy, timeouts, version).</summary>
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

    /// <summary>-r/--readonly: every change to the export is refused with EROFS (<see cref="ReadOnlyExport"/>).</summary>
    public bool ReadOnly;
    public bool Help;
    public bool Version;

    public const string Usage =
        "usage: virtfs-proxy-helper -p PATH (-f FD | -s SOCKET -u UID -g GID) [options]\n" +
        "Serves the directory PATH over QEMU 7.2's proxy-FS protocol, to vhost-user-9p or to QEMU's -fsdev proxy.\n" +
        "Runs as root; sandboxes itself (mount namespace, export as its root, capabilities cut to what it needs).\n" +
        "\n" +
        "  -p, --path PATH              directory to export\n" +
        "  -f, --fd FD                  an inherited, connected socket to serve (one client)\n" +
        "  -s, --socket PATH            named socket to listen on (many clients); needs -u and -g\n" +
        "  -u, --uid UID                owner of the socket: the only uid served besides root\n" +
        "                               (with -f: the user holding the other end, for the export reach check)\n" +
        "  -g, --gid GID                group of the socket (with -f: that user's group)\n" +
        "                               (-s and -f cannot be used together)\n" +
        "  -n, --nodaemon               stay in the foreground and log to stderr (default: detach, log to syslog)\n" +
        "  -r, --readonly               refuse every change to the export with EROFS\n" +
        "      --allow-xattr PREFIX     also serve xattrs named PREFIX* (e.g. security.); by default only\n" +
        "                               user.* and system.posix_acl_{access,default}; repeatable\n" +
        "      --request-timeout SEC    a request must arrive whole this long after its first byte, and a\n" +
        "                               reply write may block this long (default 10)\n" +
        "  -V, --version                print the version and exit\n" +
        "  -h, --help                   this text\n" +
        "Readiness: with -n under systemd (Type=notify), READY=1 is sent on $NOTIFY_SOCKET once it serves.\n";

    public static string VersionText => $"virtfs-proxy-helper {VirtFs.Common.ProgramVersion.Text}";

    /// <summary>Parses; on bad usage writes one line to stderr and sets exit code 2; for --help and --version
    /// writes their text to stdout and sets exit code 0. Returns null in all those cases.</summary>
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
                        if (i + 1 >= args.Length) return Fail($"option '--{name}' requires an argument", out exitCode);
                        value = args[++i];
                    }
                    if (name == "allow-xattr")
                    {
                        // "security" and "security." both mean the security.* namespace; an empty prefix would allow all.
                        string prefix = value.EndsWith('.') ? value : value + ".";
                        if (prefix.Length < 2) return Fail("--allow-xattr needs a name prefix such as security.", out exitCode);
                        o.AllowedXattrPrefixes.Add(prefix);
                    }
                    else
                    {
                        if (!int.TryParse(value, out int seconds) || seconds < 1 || seconds > 3600)
                            return Fail("--request-timeout must be 1..3600 seconds", out exitCode);
                        o.RequestTimeoutSeconds = seconds;
                    }
                    continue;
                }
                opt = name switch
                {
                    "path" => 'p', "fd" => 'f', "socket" => 's', "uid" => 'u', "gid" => 'g',
                    "nodaemon" => 'n', "help" => 'h', "readonly" => 'r', "version" => 'V', _ => '?',
                };
                if (opt == '?') return Fail($"unrecognized option '{a}'", out exitCode);
                if (value is not null && opt is 'n' or 'h' or 'r' or 'V')
                    return Fail($"option '--{name}' doesn't allow an argument", out exitCode);
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
                if (i + 1 >= args.Length) return Fail($"option requires an argument -- '{opt}'", out exitCode);
                value = args[++i];
            }
            switch (opt)
            {
                case 'p': o.Path = value; break;
                case 'n': o.Daemon = false; break;
                case 'r': o.ReadOnly = true; break;
                case 'f': o.Fd = Atoi(value!); break;
                case 's': o.Socket = value; break;
                case 'u': o.Uid = Atoi(value!); break;
                case 'g': o.Gid = Atoi(value!); break;
                case 'h': o.Help = true; break;
                case 'V': o.Version = true; break;
                default: return Fail($"invalid option -- '{opt}'", out exitCode);
            }
        }

        if (o.Help || o.Version)
        {
            Console.Out.Write(o.Help ? Usage : VersionText + "\n");
            return null;
        }
        if ((o.Socket is null && o.Fd == -1) || o.Path is null)
            return Fail("socket, socket descriptor or path not specified", out exitCode);
        if (o.Socket is not null && o.Fd != -1)
            return Fail("both named socket and socket descriptor specified", out exitCode);
        if (o.Socket is not null && (o.Uid == -1 || o.Gid == -1))
            return Fail("owner uid:gid not specified, owner uid:gid specifies who can access the socket file", out exitCode);
        if (o.Socket is null && o.Fd < 0)
            return Fail("invalid socket descriptor", out exitCode);
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

    /// <summary>Bad usage: one line naming the problem, exit status 2 (as getopt-based tools and vhost-user-9p).</summary>
    private static HelperOptions? Fail(string message, out int exitCode)
    {
        Console.Error.WriteLine($"virtfs-proxy-helper: {message} (try --help)");
        exitCode = 2;
        return null;
    }
}

using System.Globalization;
using Microsoft.Extensions.Configuration;
using VirtFs.Common;
using VirtFs.Virtio9p.Confinement;

namespace VirtFs.Virtio9p;

/// <summary>How much the backend logs (virtiofsd's --log-level values).</summary>
public enum LogLevelOption { Error, Warn, Info, Debug }

/// <summary>How log lines are written: readable text, or compact JSON (one object per line).</summary>
public enum LogFormat { Text, Json }

/// <summary>
/// The settings of vhost-user-9p. Every option is one row of <see cref="Table"/> (name, value, help, setter): the
/// command line, the config file, the environment and --help all come from that table, so a new option is one row.
/// Sources, weakest first: config file (--config FILE or VIRTFS_CONFIG; JSON, keys are the option names without
/// dashes in front, e.g. "socket-path"), environment (VIRTFS_ + the name in capitals with '_' for '-', e.g.
/// VIRTFS_SOCKET_PATH), command line. Names follow virtiofsd where the meaning is the same.
/// </summary>
public sealed class BackendOptions
{
    public string? SocketPath { get; private set; }
    /// <summary>--fd: an inherited listening socket (socket activation).</summary>
    public int? ListenFd { get; private set; }
    public string? SocketGroup { get; private set; }
    public string? Tag { get; private set; }
    public string? HelperSocket { get; private set; }
    public int? HelperFd { get; private set; }
    public int HelperConnections { get; private set; } = 4;
    public int Workers { get; private set; } = 16;
    public int MaxMessageSize { get; private set; } = Protocol.P9Limits.MaxMessageSize;
    public int MaxFids { get; private set; } = Server.SessionLimits.DefaultMaxFids;
    public int MaxOpenFiles { get; private set; } = Server.SessionLimits.DefaultMaxOpenFiles;
    public string GuestMemory { get; private set; } = "1G";
    public bool ReadOnly { get; private set; }
    public bool PrintQemuArgs { get; private set; }
    public bool Help { get; private set; }
    public bool Version { get; private set; }
    public LogLevelOption LogLevel { get; private set; } = LogLevelOption.Info;
    public LogFormat LogFormat { get; private set; } = LogFormat.Text;
    public bool Syslog { get; private set; }
    public string? ConfigFile { get; private set; }
    /// <summary>--keep-listening: serve the next front-end after a disconnect instead of exiting.</summary>
    public bool KeepListening { get; private set; }
    /// <summary>--connect: connect to the socket path (QEMU listens) instead of listening on it.</summary>
    public bool Connect { get; private set; }

    /// <summary>Rootless mode (issue 16): the backend serves this directory itself, no helper.</summary>
    public string? SharedDir { get; private set; }

    /// <summary>How guest owners and modes are kept in rootless mode (--security-model).</summary>
    public FileSystem.SecurityModel SecurityModel { get; private set; } = FileSystem.SecurityModel.MappedXattr;

    private bool _securityModelGiven;
    public SeccompMode Seccomp { get; private set; } = SeccompMode.Kill;

    /// <summary>One option: its long name, an optional short one, the name of its value (null for a flag), the help
    /// line, whether a config file or the environment may set it, and what it does.</summary>
    private sealed record Option(string Name, char Short, string? ValueName, string Help, bool Configurable,
        Action<BackendOptions, string, string> Set);

    private const char NoShort = '\0';

    private static readonly Option[] Table =
    [
        new("socket-path", NoShort, "PATH", "vhost-user socket to listen on (QEMU connects to it)", true,
            (o, _, v) => o.SocketPath = v),
        new("fd", NoShort, "N", "an inherited listening socket instead of --socket-path (socket activation;\n" +
            "LISTEN_FDS/LISTEN_PID from systemd are used when neither is given)", true,
            (o, n, v) => o.ListenFd = Number(n, v, 3, int.MaxValue)),
        new("socket-group", NoShort, "GROUP", "group (name or number) given read/write access to --socket-path", true,
            (o, _, v) => o.SocketGroup = NonEmpty("socket-group", v)),
        new("tag", NoShort, "TAG", "mount tag the guest sees (1..255 bytes)", true, (o, _, v) => o.Tag = v),
        new("helper-socket", NoShort, "PATH", "virtfs-proxy-helper's named socket (reconnected when lost)", true,
            (o, _, v) => o.HelperSocket = v),
        new("helper-fd", NoShort, "N", "an inherited, connected helper socket (one connection)", true,
            (o, n, v) => o.HelperFd = Number(n, v, 0, int.MaxValue)),
        new("shared-dir", NoShort, "DIR", "rootless: serve DIR without a helper, confined to it (openat2\n" +
            "RESOLVE_IN_ROOT), as the unprivileged user that owns DIR", true,
            (o, _, v) => o.SharedDir = NonEmpty("shared-dir", v)),
        new("security-model", NoShort, "mapped-xattr|none", "with --shared-dir: mapped-xattr (default; guest owners,\n" +
            "modes, device nodes and symlinks kept in user.virtfs.* xattrs, as QEMU's\n" +
            "security_model=mapped-xattr) or none (real objects owned by the serving user)", true,
            (o, _, v) => { o.SecurityModel = SecurityModelValue(v); o._securityModelGiven = true; }),
        new("helper-connections", NoShort, "N", "helper connections kept open, for parallel metadata (default 4)", true,
            (o, n, v) => o.HelperConnections = Number(n, v, 1, 64)),
        new("thread-pool-size", NoShort, "N", "request worker threads (default 16; --workers is the same)", true,
            (o, n, v) => o.Workers = Number(n, v, 1, 256)),
        new("workers", NoShort, "N", "same as --thread-pool-size", true, (o, n, v) => o.Workers = Number(n, v, 1, 256)),
        new("msize", NoShort, "N", "largest 9P message accepted (default 1048576)", true,
            (o, n, v) => o.MaxMessageSize = Number(n, v, Protocol.P9Limits.MinMessageSize, Protocol.P9Limits.MaxMessageSize)),
        new("max-fids", NoShort, "N", "fids one guest session may hold (default 262144; EMFILE past it)", true,
            (o, n, v) => o.MaxFids = Number(n, v, 16, 1 << 24)),
        new("max-open-files", NoShort, "N", "host files one guest session may hold open (default 16384; EMFILE past it)", true,
            (o, n, v) => o.MaxOpenFiles = Number(n, v, 16, 1 << 20)),
        new("readonly", NoShort, null, "refuse every change to the export with EROFS (ask the helper for -r too)", true,
            (o, n, v) => o.ReadOnly = Flag(n, v)),
        new("keep-listening", NoShort, null, "when the front-end disconnects (QEMU exited, was killed or restarted),\n" +
            "listen again and serve the next one with a fresh 9P state; default: exit 0", true,
            (o, n, v) => o.KeepListening = Flag(n, v)),
        new("connect", NoShort, null, "connect to --socket-path instead of listening on it (QEMU listens:\n" +
            "-chardev socket,server=on,...); retried until QEMU accepts; with --keep-listening,\n" +
            "connect again after each disconnect", true, (o, n, v) => o.Connect = Flag(n, v)),
        new("seccomp", NoShort, "kill|log|none", "a syscall outside the allowlist kills the backend (default), is\n" +
            "logged by the kernel (dmesg/audit; for finding misses), or no filter at all", true,
            (o, _, v) => o.Seccomp = SeccompValue(v)),
        new("log-level", NoShort, "error|warn|info|debug", "least severe messages logged (default info)", true,
            (o, _, v) => o.LogLevel = LogLevelValue(v)),
        new("log-format", NoShort, "text|json", "text (default) or compact JSON, one event per line", true,
            (o, _, v) => o.LogFormat = v switch
            {
                "text" => LogFormat.Text,
                "json" => LogFormat.Json,
                _ => throw new OptionsException($"--log-format must be text or json, not '{v}'"),
            }),
        new("syslog", NoShort, null, "log to syslog instead of stderr (under systemd stderr goes to the journal\n" +
            "already, with each line's level)", true, (o, n, v) => o.Syslog = Flag(n, v)),
        new("verbose", 'v', null, "same as --log-level debug", true,
            (o, n, v) => { if (Flag(n, v)) o.LogLevel = LogLevelOption.Debug; }),
        new("guest-memory", NoShort, "SIZE", "guest RAM for --print-qemu-args (default 1G)", true,
            (o, _, v) => o.GuestMemory = NonEmpty("guest-memory", v)),
        new("print-qemu-args", NoShort, null, "print the QEMU arguments matching these options and exit", false,
            (o, _, _) => o.PrintQemuArgs = true),
        new("config", NoShort, "FILE", "read options from a JSON file ({\"tag\": \"share\", ...}); the environment\n" +
            "(VIRTFS_TAG=...) overrides it and the command line overrides both", false, (o, _, v) => o.ConfigFile = v),
        new("version", 'V', null, "print the version and exit", false, (o, _, _) => o.Version = true),
        new("help", 'h', null, "this text", false, (o, _, _) => o.Help = true),
    ];

    public static string VersionText => $"vhost-user-9p {ProgramVersion.Text}";

    public static string Usage { get; } = BuildUsage();

    private static string BuildUsage()
    {
        var text = new System.Text.StringBuilder("""
            Usage: vhost-user-9p (--socket-path PATH | --fd N) --tag TAG (--helper-socket PATH | --helper-fd N | --shared-dir DIR) [options]

            A vhost-user virtio-9p device backend. QEMU connects to PATH with
              -chardev socket,id=ID,path=PATH -device vhost-user-test-device-pci,chardev=ID,virtio-id=9,...
            and the guest mounts TAG with: mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt
            Filesystem access goes through a virtfs-proxy-helper serving the export (root; guest owners and modes
            are the host's), or, with --shared-dir, through the backend itself as the unprivileged user that owns DIR.
            SIGTERM: finish the requests in flight and exit 0. SIGUSR1: log the metrics (meter VirtFs.Backend).


            """);
        foreach (Option option in Table)
        {
            string left = (option.Short != NoShort ? $"-{option.Short}, " : "    ") + "--" + option.Name +
                (option.ValueName is null ? "" : " " + option.ValueName);
            string[] help = option.Help.Split('\n');
            text.Append("  ").Append(left.PadRight(38)).Append(' ').Append(help[0]).Append('\n');
            for (int i = 1; i < help.Length; i++)
            {
                text.Append(' ', 41).Append(help[i]).Append('\n');
            }
        }
        text.Append('\n').Append("Environment: VIRTFS_CONFIG, and VIRTFS_<OPTION> for every option above but the last four.");
        return text.ToString();
    }

    /// <summary>Parses the command line alone (no file, no environment).</summary>
    public static BackendOptions Parse(string[] args) => Parse(args, environment: null);

    /// <summary>Parses the config file and <paramref name="environment"/> (name to value; null: none), then
    /// <paramref name="args"/> over them. Throws <see cref="OptionsException"/> with a one-line message.</summary>
    public static BackendOptions Parse(string[] args, IReadOnlyDictionary<string, string>? environment)
    {
        // The command line first, to learn --config and --help; then everything again in order of strength.
        var commandLine = new BackendOptions();
        commandLine.ApplyArguments(args);
        if (commandLine.Help || commandLine.Version)
        {
            return commandLine;
        }
        var options = new BackendOptions();
        string? configFile = commandLine.ConfigFile;
        if (configFile is null && environment is not null && environment.TryGetValue("VIRTFS_CONFIG", out string? fromEnv) &&
            fromEnv.Length > 0)
        {
            configFile = fromEnv;
        }
        if (configFile is not null || environment is not null)
        {
            options.ApplyConfiguration(Load(configFile, environment));
        }
        options.ApplyArguments(args);
        options.Validate();
        return options;
    }

    /// <summary>The file (JSON) and the VIRTFS_ variables as one configuration; keys are read explicitly below (no
    /// reflection binder: Native AOT).</summary>
    private static IConfiguration Load(string? configFile, IReadOnlyDictionary<string, string>? environment)
    {
        var builder = new ConfigurationBuilder();
        if (configFile is not null)
        {
            if (!File.Exists(configFile))
            {
                throw new OptionsException($"config file '{configFile}' does not exist");
            }
            builder.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        }
        if (environment is not null)
        {
            // Renamed into a section of their own ("VIRTFS_SOCKET_PATH" -> "environment:socket-path"): a file key
            // never collides, and the environment wins over the file below.
            var variables = new Dictionary<string, string?>();
            foreach (Option option in Table)
            {
                string variable = "VIRTFS_" + option.Name.Replace('-', '_').ToUpperInvariant();
                if (option.Configurable && environment.TryGetValue(variable, out string? value))
                {
                    variables[EnvironmentSection + ":" + option.Name] = value;
                }
            }
            builder.AddInMemoryCollection(variables);
        }
        try
        {
            return builder.Build();
        }
        catch (Exception e) when (e is FormatException or InvalidDataException or IOException)
        {
            throw new OptionsException($"config file '{configFile}': {OneLine(e.InnerException?.Message ?? e.Message)}");
        }
    }

    private const string EnvironmentSection = "environment";

    private void ApplyConfiguration(IConfiguration configuration)
    {
        foreach (IConfigurationSection section in configuration.GetChildren())
        {
            if (section.Key == EnvironmentSection)
            {
                continue;
            }
            Option? option = Find(section.Key);
            if (option is null || !option.Configurable)
            {
                throw new OptionsException($"config file: unknown option '{section.Key}'");
            }
        }
        foreach (Option option in Table)
        {
            if (!option.Configurable)
            {
                continue;
            }
            string? value = configuration[EnvironmentSection + ":" + option.Name] ?? configuration[option.Name];
            if (value is not null)
            {
                option.Set(this, "--" + option.Name, value);
            }
        }
    }

    private void ApplyArguments(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            Option? option;
            string? inline = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Length > 2)
            {
                string name = arg[2..];
                int eq = name.IndexOf('=');
                if (eq >= 0)
                {
                    inline = name[(eq + 1)..];
                    name = name[..eq];
                }
                option = Find(name);
            }
            else if (arg.Length == 2 && arg[0] == '-')
            {
                option = Array.Find(Table, o => o.Short == arg[1]);
            }
            else
            {
                throw new OptionsException($"unexpected argument '{arg}'");
            }
            if (option is null)
            {
                throw new OptionsException($"unknown option '{arg}'");
            }
            string flag = "--" + option.Name;
            if (option.ValueName is null)
            {
                if (inline is not null)
                {
                    throw new OptionsException($"{flag} takes no value");
                }
                option.Set(this, flag, "true");
                continue;
            }
            if (inline is null)
            {
                if (i + 1 >= args.Length)
                {
                    throw new OptionsException($"{flag} needs a value ({option.ValueName})");
                }
                inline = args[++i];
            }
            option.Set(this, flag, inline);
        }
    }

    private void Validate()
    {
        if (SocketPath is not null && ListenFd is not null)
        {
            throw new OptionsException("give --socket-path or --fd, not both");
        }
        if (SocketPath is null && ListenFd is null && !SocketActivation.Available(out _))
        {
            throw new OptionsException("--socket-path (or --fd, or socket activation) is required");
        }
        if (SocketPath is null && PrintQemuArgs)
        {
            throw new OptionsException("--print-qemu-args needs --socket-path");
        }
        if (string.IsNullOrEmpty(Tag))
        {
            throw new OptionsException("--tag is required");
        }
        // Exactly one way to reach the files: the helper (socket or fd) or the shared directory.
        int sources = (HelperSocket is null ? 0 : 1) + (HelperFd is null ? 0 : 1) + (SharedDir is null ? 0 : 1);
        if (_securityModelGiven && SharedDir is null)
        {
            throw new OptionsException("--security-model goes with --shared-dir (the helper's mode is passthrough)");
        }
        if (!PrintQemuArgs && sources != 1)
        {
            throw new OptionsException("give exactly one of --helper-socket, --helper-fd and --shared-dir");
        }
        if (SocketGroup is not null && SocketPath is null)
        {
            throw new OptionsException("--socket-group applies to --socket-path only");
        }
        if (Connect && SocketPath is null)
        {
            throw new OptionsException("--connect needs --socket-path (the socket QEMU listens on)");
        }
    }

    private static FileSystem.SecurityModel SecurityModelValue(string text) => text switch
    {
        "mapped-xattr" or "mapped" => FileSystem.SecurityModel.MappedXattr,
        "none" => FileSystem.SecurityModel.None,
        "passthrough" => throw new OptionsException(
            "--security-model passthrough needs root to give files the guest's owners: use virtfs-proxy-helper (--helper-socket)"),
        _ => throw new OptionsException($"--security-model must be mapped-xattr or none, not '{text}'"),
    };

    private static Option? Find(string name) => Array.Find(Table, o => o.Name == name);

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();

    private static string NonEmpty(string name, string value) =>
        value.Length > 0 ? value : throw new OptionsException($"--{name} needs a non-empty value");

    private static bool Flag(string name, string value) => value switch
    {
        "true" or "True" or "1" or "yes" => true,
        "false" or "False" or "0" or "no" => false,
        _ => throw new OptionsException($"{name} is true or false, not '{value}'"),
    };

    private static SeccompMode SeccompValue(string text) => text switch
    {
        "kill" => SeccompMode.Kill,
        "log" => SeccompMode.Log,
        "none" => SeccompMode.None,
        _ => throw new OptionsException($"--seccomp must be kill, log or none, not '{text}'"),
    };

    private static LogLevelOption LogLevelValue(string text) => text switch
    {
        "error" => LogLevelOption.Error,
        "warn" => LogLevelOption.Warn,
        "info" => LogLevelOption.Info,
        "debug" => LogLevelOption.Debug,
        _ => throw new OptionsException($"--log-level must be error, warn, info or debug, not '{text}'"),
    };

    private static int Number(string name, string text, int min, int max)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
        {
            throw new OptionsException($"{name} must be a number from {min} to {max}, not '{text}'");
        }
        return value;
    }
}

public sealed class OptionsException(string message) : Exception(message);

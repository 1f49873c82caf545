using System.Globalization;
using VirtFs.Virtio9p.Confinement;

namespace VirtFs.Virtio9p;

/// <summary>The command line of vhost-user-9p. Hand-parsed: a dozen options do not justify a parser
/// library in a Native AOT binary.</summary>
public sealed class BackendOptions
{
    public string? SocketPath { get; private set; }
    public string? Tag { get; private set; }
    public string? HelperSocket { get; private set; }
    public int? HelperFd { get; private set; }
    public int HelperConnections { get; private set; } = 4;
    public int Workers { get; private set; } = 16;
    public int MaxMessageSize { get; private set; } = Protocol.P9Limits.MaxMessageSize;
    public int MaxFids { get; private set; } = Server.SessionLimits.DefaultMaxFids;
    public int MaxOpenFiles { get; private set; } = Server.SessionLimits.DefaultMaxOpenFiles;
    public string GuestMemory { get; private set; } = "1G";
    public bool PrintQemuArgs { get; private set; }
    public bool Help { get; private set; }
    public bool Verbose { get; private set; }
    public bool KeepListening { get; private set; }
    public bool Connect { get; private set; }
    public SeccompMode Seccomp { get; private set; } = SeccompMode.Kill;

    public const string Usage = """
        Usage: vhost-user-9p --socket-path PATH --tag TAG (--helper-socket PATH | --helper-fd N) [options]

        A vhost-user virtio-9p device backend. QEMU connects to PATH with
          -chardev socket,id=ID,path=PATH -device vhost-user-test-device-pci,chardev=ID,virtio-id=9,...
        and the guest mounts TAG with: mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt
        Filesystem access goes through a virtfs-proxy-helper serving the export.

          --socket-path PATH        vhost-user socket to listen on (QEMU connects to it)
          --tag TAG                 mount tag the guest sees (1..255 bytes)
          --helper-socket PATH      virtfs-proxy-helper's named socket (reconnected when lost)
          --helper-fd N             an inherited, connected helper socket (one connection)
          --helper-connections N    helper connections kept open, for parallel metadata (default 4)
          --workers N               request worker threads (default 16)
          --msize N                 largest 9P message accepted (default 1048576)
          --max-fids N              fids one guest session may hold (default 262144; EMFILE past it)
          --max-open-files N        host files one guest session may hold open (default 16384; EMFILE past it)
          --guest-memory SIZE       guest RAM for --print-qemu-args (default 1G)
          --keep-listening          when the front-end disconnects (QEMU exited, was killed or restarted), listen
                                    again and serve the next one with a fresh 9P state; default: exit 0
          --connect                 connect to PATH instead of listening on it (QEMU listens:
                                    -chardev socket,server=on,...); retried until QEMU accepts; with
                                    --keep-listening, connect again after each disconnect
          --seccomp=kill|log|none   a syscall outside the allowlist kills the backend (default), is logged
                                    by the kernel (dmesg/audit; for finding misses), or no filter at all
          --print-qemu-args         print the QEMU arguments matching these options and exit
          -v, --verbose             debug logging
          -h, --help                this text
        """;

    public static BackendOptions Parse(string[] args)
    {
        var options = new BackendOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            if (arg.StartsWith("--seccomp=", StringComparison.Ordinal))
            {
                options.Seccomp = SeccompValue(arg["--seccomp=".Length..]);
                continue;
            }
            switch (arg)
            {
                case "--socket-path": options.SocketPath = Value(args, ref i); break;
                case "--tag": options.Tag = Value(args, ref i); break;
                case "--helper-socket": options.HelperSocket = Value(args, ref i); break;
                case "--helper-fd": options.HelperFd = Number(args, ref i, 0, int.MaxValue); break;
                case "--helper-connections": options.HelperConnections = Number(args, ref i, 1, 64); break;
                case "--workers": options.Workers = Number(args, ref i, 1, 256); break;
                case "--msize": options.MaxMessageSize = Number(args, ref i, Protocol.P9Limits.MinMessageSize, Protocol.P9Limits.MaxMessageSize); break;
                case "--max-fids": options.MaxFids = Number(args, ref i, 16, 1 << 24); break;
                case "--max-open-files": options.MaxOpenFiles = Number(args, ref i, 16, 1 << 20); break;
                case "--guest-memory": options.GuestMemory = Value(args, ref i); break;
                case "--seccomp": options.Seccomp = SeccompValue(Value(args, ref i)); break;
                case "--print-qemu-args": options.PrintQemuArgs = true; break;
                case "--keep-listening": options.KeepListening = true; break;
                case "--connect": options.Connect = true; break;
                case "-v": case "--verbose": options.Verbose = true; break;
                case "-h": case "--help": options.Help = true; break;
                default: throw new OptionsException($"unknown option '{arg}'");
            }
        }
        if (options.Help)
        {
            return options;
        }
        if (options.SocketPath is null)
        {
            throw new OptionsException("--socket-path is required");
        }
        if (string.IsNullOrEmpty(options.Tag))
        {
            throw new OptionsException("--tag is required");
        }
        if (!options.PrintQemuArgs && (options.HelperSocket is null) == (options.HelperFd is null))
        {
            throw new OptionsException("give exactly one of --helper-socket and --helper-fd");
        }
        return options;
    }

    private static string Value(string[] args, ref int i)
    {
        if (i + 1 >= args.Length)
        {
            throw new OptionsException($"{args[i]} needs a value");
        }
        return args[++i];
    }

    private static SeccompMode SeccompValue(string text) => text switch
    {
        "kill" => SeccompMode.Kill,
        "log" => SeccompMode.Log,
        "none" => SeccompMode.None,
        _ => throw new OptionsException($"--seccomp must be kill, log or none, not '{text}'"),
    };

    private static int Number(string[] args, ref int i, int min, int max)
    {
        string name = args[i];
        string text = Value(args, ref i);
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
        {
            throw new OptionsException($"{name} must be a number from {min} to {max}, not '{text}'");
        }
        return value;
    }
}

public sealed class OptionsException(string message) : Exception(message);

using System.Collections;
using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serilog;
using VirtFs.Common;
using VirtFs.ProxyFs;
using VirtFs.VhostUser;
using VirtFs.Virtio9p;
using VirtFs.Virtio9p.Confinement;
using VirtFs.Virtio9p.Device;
using VirtFs.Virtio9p.Diagnostics;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Server;

// Order: options, log, the listening socket and the readiness socket (both need the file system), confinement,
// then the helper and the device. Exit status: 0 after a clean stop (front-end gone, SIGTERM), 1 on failure,
// 2 on bad usage.

BackendOptions options;
try
{
    var environment = new Dictionary<string, string>();
    foreach (DictionaryEntry variable in Environment.GetEnvironmentVariables())
    {
        environment[(string)variable.Key] = (string?)variable.Value ?? "";
    }
    options = BackendOptions.Parse(args, environment);
}
catch (OptionsException e)
{
    Console.Error.WriteLine($"vhost-user-9p: {e.Message} (try --help)");
    return 2;
}
if (options.Help)
{
    Console.WriteLine(BackendOptions.Usage);
    return 0;
}
if (options.Version)
{
    Console.WriteLine(BackendOptions.VersionText);
    return 0;
}
if (options.PrintQemuArgs)
{
    Console.WriteLine(QemuArguments.Format(options));
    return 0;
}

Log.Logger = LogSetup.Create(options);
ILoggerFactory loggerFactory = new Serilog.Extensions.Logging.SerilogLoggerFactory(Log.Logger);

using SdNotify notify = SdNotify.Open();
if (notify.Problem is not null)
{
    Log.Warning("systemd readiness: {Problem}", notify.Problem);
}

// Debug aid for the fuzzers (docs/fuzzing.md): the file must be open before confinement forbids opening it.
if (VirtFs.VhostUser.Diagnostics.SessionRecorder.StartFromEnvironment() is { } recording)
{
    Log.ForContext("SourceContext", "VirtFs.Virtio9p").Warning("recording every vhost-user message and 9P request to {Path} (VIRTFS_RECORD)", recording);
}

// Rootless mode: the export is opened before confinement, so a wrong directory is reported at once.
LocalFileSystem? sharedDir = null;
if (options.SharedDir is not null)
{
    try
    {
        sharedDir = SharedDirectory.Open(options);
    }
    catch (Exception e) when (e is IOException or PlatformNotSupportedException)
    {
        Log.Fatal("vhost-user-9p cannot serve --shared-dir {Dir}: {Message}", options.SharedDir, e.Message);
        await Log.CloseAndFlushAsync();
        return 1;
    }
}

using var metrics = new BackendMetrics();
// The helper pool (or the shared directory) is shared and outlives the devices; a device and 9P server per
// front-end: nothing of one QEMU's session (fids, open files, requests still running) reaches the next one
// (--keep-listening).
ProxyClientPool? pool = sharedDir is null ? new ProxyClientPool(HelperConnector.Create(options), HelperConnector.PoolSize(options)) : null;
IFileSystem fileSystem = sharedDir ?? (IFileSystem)new ProxyFileSystem(pool!, loggerFactory.CreateLogger<ProxyFileSystem>());
IVirtioDevice NewDevice() => new Virtio9pDevice(options.Tag!,
    new P9Server(fileSystem, loggerFactory.CreateLogger<P9Server>(), options.MaxMessageSize, metrics, options.ReadOnly,
        new SessionLimits { MaxFids = options.MaxFids, MaxOpenFiles = options.MaxOpenFiles }),
    options.Workers, loggerFactory.CreateLogger<Virtio9pDevice>(), metrics);
VhostUserServer server;
try
{
    server = CreateVhostUserServer();
}
catch (Exception e) when (e is IOException or ArgumentException or OptionsException)
{
    Log.Fatal("vhost-user-9p cannot listen: {Message}", e.Message);
    await Log.CloseAndFlushAsync();
    return 1;
}

try
{
    // Before any guest byte is read (issue 12); after the sockets above, which need the file system.
    Sandbox.Apply(options.Seccomp, servesFiles: sharedDir is not null);
    Log.ForContext("SourceContext", "VirtFs.Virtio9p.Confinement")
        .Information("confined: no capabilities, no_new_privs, seccomp {Mode}", options.Seccomp.ToString().ToLowerInvariant());
}
catch (ConfinementException e)
{
    Log.Fatal("vhost-user-9p could not confine itself: {Message}", e.Message);
    if (options.SocketPath is not null && !options.Connect)
    {
        File.Delete(options.SocketPath); // bound above; nobody will ever accept on it
    }
    await Log.CloseAndFlushAsync();
    return 1;
}

// SIGUSR1: the metrics into the log, for people without dotnet-counters.
using PosixSignalRegistration usr1 = PosixSignalRegistration.Create((PosixSignal)10 /* SIGUSR1 */, context =>
{
    context.Cancel = true;
    Log.ForContext("SourceContext", "VirtFs.Virtio9p.Metrics").Information("metrics ({Meter}):\n{Metrics}",
        BackendMetrics.MeterName, metrics.Format());
});

try
{
    HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
    builder.Services.AddSerilog();
    builder.Services.AddSingleton(options);
    builder.Services.AddSingleton(server);
    builder.Services.AddSingleton(notify);
    builder.Services.AddSingleton(metrics);
    builder.Services.AddHostedService<BackendService>();
    // SIGTERM: the host stops the server, which stops taking requests and waits for those in flight (BackendService).
    builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(60));

    using IHost host = builder.Build();
    if (pool is not null)
    {
        HelperConnector.Probe(pool, loggerFactory.CreateLogger<ProxyClientPool>());
    }
    else
    {
        SharedDirectory.Describe(options, loggerFactory.CreateLogger<LocalFileSystem>());
    }
    await host.RunAsync();
    return Environment.ExitCode;
}
catch (Exception e)
{
    Log.Fatal(e, "vhost-user-9p failed to start");
    return 1;
}
finally
{
    await Log.CloseAndFlushAsync();
}

// --fd, then systemd's LISTEN_FDS, then --socket-path (bound now, with --socket-group).
VhostUserServer CreateVhostUserServer()
{
    ILogger<VhostUserServer> logger = loggerFactory.CreateLogger<VhostUserServer>();
    if (options.ListenFd is int fd)
    {
        return new VhostUserServer(fd, $"fd {fd}", NewDevice, logger, options.KeepListening);
    }
    if (options.SocketPath is null)
    {
        SocketActivation.Consume();
        return new VhostUserServer(SocketActivation.FirstFd, "the socket systemd passed (LISTEN_FDS)", NewDevice, logger,
            options.KeepListening);
    }
    var vhostUser = new VhostUserServer(options.SocketPath, NewDevice, logger, options.KeepListening)
    {
        ConnectToFrontEnd = options.Connect,
    };
    if (!options.Connect)
    {
        vhostUser.ListenNow(options.SocketGroup is null ? null : GroupId(options.SocketGroup));
    }
    return vhostUser;
}

static int GroupId(string group)
{
    if (int.TryParse(group, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int gid))
    {
        return gid;
    }
    // /etc/group, read directly: getgrnam(3) would pull NSS modules (dlopen) into a process about to be confined.
    foreach (string line in File.ReadLines("/etc/group"))
    {
        string[] fields = line.Split(':');
        if (fields.Length >= 3 && fields[0] == group && int.TryParse(fields[2], out gid))
        {
            return gid;
        }
    }
    throw new OptionsException($"--socket-group: no group '{group}' in /etc/group");
}


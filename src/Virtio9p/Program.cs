using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Events;
using VirtFs.ProxyFs;
using VirtFs.VhostUser;
using VirtFs.Virtio9p;
using VirtFs.Virtio9p.Confinement;
using VirtFs.Virtio9p.Device;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Server;

BackendOptions options;
try
{
    options = BackendOptions.Parse(args);
}
catch (OptionsException e)
{
    Console.Error.WriteLine($"vhost-user-9p: {e.Message}");
    Console.Error.WriteLine(BackendOptions.Usage);
    return 2;
}
if (options.Help)
{
    Console.WriteLine(BackendOptions.Usage);
    return 0;
}
if (options.PrintQemuArgs)
{
    Console.WriteLine(QemuArguments.Format(options));
    return 0;
}

Log.Logger = new LoggerConfiguration()
    .MinimumLevel.Is(options.Verbose ? LogEventLevel.Debug : LogEventLevel.Information)
    .WriteTo.Console(standardErrorFromLevel: LogEventLevel.Verbose,
        outputTemplate: "{Timestamp:HH:mm:ss.fff} [{Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}")
    .CreateLogger();

try
{
    // Before the vhost-user socket exists and before any guest byte is read (issue 12).
    Sandbox.Apply(options.Seccomp);
    Log.ForContext("SourceContext", "VirtFs.Virtio9p.Confinement")
        .Information("confined: no capabilities, no_new_privs, seccomp {Mode}", options.Seccomp.ToString().ToLowerInvariant());
}
catch (ConfinementException e)
{
    Log.Fatal("vhost-user-9p could not confine itself: {Message}", e.Message);
    await Log.CloseAndFlushAsync();
    return 1;
}

try
{
    HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
    builder.Services.AddSerilog();
    builder.Services.AddSingleton(options);
    builder.Services.AddSingleton(_ => new ProxyClientPool(HelperConnector.Create(options), HelperConnector.PoolSize(options)));
    builder.Services.AddSingleton<IFileSystem>(sp =>
        new ProxyFileSystem(sp.GetRequiredService<ProxyClientPool>(), sp.GetRequiredService<ILogger<ProxyFileSystem>>()));
    // A device and 9P server per front-end: nothing of one QEMU's session (fids, open files, requests still
    // running) reaches the next one (--keep-listening). The helper pool is shared and outlives them.
    builder.Services.AddSingleton(sp => new VhostUserServer(options.SocketPath!,
        () => new Virtio9pDevice(options.Tag!,
            new P9Server(sp.GetRequiredService<IFileSystem>(), sp.GetRequiredService<ILogger<P9Server>>(), options.MaxMessageSize,
                new SessionLimits { MaxFids = options.MaxFids, MaxOpenFiles = options.MaxOpenFiles }),
            options.Workers, sp.GetRequiredService<ILogger<Virtio9pDevice>>()),
        sp.GetRequiredService<ILogger<VhostUserServer>>(), options.KeepListening) { ConnectToFrontEnd = options.Connect });
    builder.Services.AddHostedService<BackendService>();

    using IHost host = builder.Build();
    HelperConnector.Probe(host.Services.GetRequiredService<ProxyClientPool>(),
        host.Services.GetRequiredService<ILogger<ProxyClientPool>>());
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

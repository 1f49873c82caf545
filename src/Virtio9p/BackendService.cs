using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VirtFs.Common;
using VirtFs.VhostUser;
using VirtFs.Virtio9p.Diagnostics;

namespace VirtFs.Virtio9p;

/// <summary>Runs the vhost-user server and stops the host, exit status 0, when QEMU goes away (a vhost-user backend
/// serves one device instance; a management layer starts a new backend for the next QEMU), or, with
/// --keep-listening, only on SIGTERM/SIGINT (the server then serves one front-end after another).
/// Tells systemd it is ready once the socket accepts connections, and on SIGTERM (the host's stop) lets the server
/// stop taking requests and finish the ones in flight, so the guest gets every reply, then exits 0.</summary>
internal sealed class BackendService(VhostUserServer server, SdNotify notify, BackendMetrics metrics,
    IHostApplicationLifetime lifetime, ILogger<BackendService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using CancellationTokenRegistration stopping = stoppingToken.Register(() =>
        {
            notify.Stopping();
            logger.LogInformation("stopping: no new requests; finishing those in flight");
        });
        try
        {
            Task run = server.RunAsync(stoppingToken);
            // The socket listens from here on (RunAsync has it, or made it, before returning the task).
            if (!run.IsCompleted)
            {
                notify.Ready("waiting for the front-end");
            }
            await run.ConfigureAwait(false);
            if (stoppingToken.IsCancellationRequested)
            {
                logger.LogInformation("stopped; every request taken was answered");
            }
            else
            {
                logger.LogInformation("front-end disconnected; exiting");
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            logger.LogCritical(e, "vhost-user server failed");
            Environment.ExitCode = 1;
        }
        finally
        {
            // One summary per front-end (a connection event, not a request): what the device served.
            logger.LogInformation("metrics ({Meter}) at exit:\n{Metrics}", BackendMetrics.MeterName, metrics.Format());
            lifetime.StopApplication();
        }
    }
}

using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VirtFs.VhostUser;

namespace VirtFs.Virtio9p;

/// <summary>Runs the vhost-user server for one front-end and stops the host when QEMU goes away
/// (a vhost-user backend serves one device instance; QEMU restarts it with a new backend).</summary>
internal sealed class BackendService(VhostUserServer server, IHostApplicationLifetime lifetime, ILogger<BackendService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await server.RunAsync(stoppingToken).ConfigureAwait(false);
            if (!stoppingToken.IsCancellationRequested)
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
            lifetime.StopApplication();
        }
    }
}

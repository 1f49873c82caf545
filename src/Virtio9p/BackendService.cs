using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VirtFs.VhostUser;

namespace VirtFs.Virtio9p;

/// <summary>Runs the vhost-user server and stops the host, exit status 0, when QEMU goes away (a vhost-user backend
/// serves one device instance; a management layer starts a new backend for the next QEMU), or, with
/// --keep-listening, only on SIGTERM/SIGINT (the server then serves one front-end after another).</summary>
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

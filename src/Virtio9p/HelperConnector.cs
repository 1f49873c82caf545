using Microsoft.Extensions.Logging;
using VirtFs.ProxyFs;

namespace VirtFs.Virtio9p;

/// <summary>How the backend reaches virtfs-proxy-helper: a named socket it may connect to many times
/// (a pool, reconnected after the helper restarts) or one inherited connection.</summary>
internal static class HelperConnector
{
    public static Func<ProxyClient> Create(BackendOptions options)
    {
        if (options.HelperSocket is { } path)
        {
            return () => ProxyClient.Connect(path);
        }
        int fd = options.HelperFd!.Value;
        int used = 0;
        return () => Interlocked.Exchange(ref used, 1) == 0
            ? ProxyClient.FromFd(fd)
            : throw new ProxyConnectionException("the inherited helper connection (--helper-fd) was lost and cannot be reopened");
    }

    public static int PoolSize(BackendOptions options) => options.HelperSocket is null ? 1 : options.HelperConnections;

    /// <summary>Checks the helper answers before the guest needs it; a helper that is not up yet is only
    /// a warning, since the pool connects on demand.</summary>
    public static void Probe(ProxyClientPool pool, ILogger logger)
    {
        try
        {
            using ProxyClientLease lease = pool.Rent();
            int result = lease.Client.Lstat("/"u8, out _);
            if (result < 0)
            {
                logger.LogWarning("helper answers, but the export root cannot be stat'ed: errno {Errno}", -result);
            }
            else
            {
                logger.LogInformation("helper connected");
            }
        }
        catch (ProxyConnectionException e)
        {
            logger.LogWarning("helper not reachable yet ({Reason}); requests fail with EIO until it is", e.Message);
        }
    }
}

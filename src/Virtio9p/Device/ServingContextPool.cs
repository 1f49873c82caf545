using VirtFs.Virtio9p.Server;

namespace VirtFs.Virtio9p.Device;

/// <summary>What a thread needs to serve one request that may block: scratch buffers and the exchange.</summary>
internal sealed class ServingContext
{
    public WorkerBuffers Buffers { get; } = new();
    public VirtqExchange Exchange { get; } = new();
}

/// <summary>
/// Serving contexts for whichever thread serves a request that may block: a worker, or a queue thread that handed
/// the ring off (several threads take turns at that, so a context per thread would hold about 3 MiB of pinned
/// buffers for each of them). Made on demand and kept: as many exist as requests were ever served at once, and a
/// steady load allocates nothing.
/// </summary>
internal sealed class ServingContextPool
{
    private readonly Stack<ServingContext> _free = new(); // guarded by itself

    public ServingContext Rent()
    {
        lock (_free)
        {
            if (_free.TryPop(out ServingContext? context))
            {
                return context;
            }
        }
        return new ServingContext();
    }

    public void Return(ServingContext context)
    {
        lock (_free)
        {
            _free.Push(context);
        }
    }
}

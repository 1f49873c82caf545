namespace VirtFs.ProxyFs;

/// <summary>
/// A small pool of proxy connections so metadata requests run in parallel (the protocol is one request at a
/// time per socket, 9p-proxy.c serialises on one mutex). Connections are made lazily; a broken client is
/// disposed when its lease ends and replaced by a fresh connect on a later <see cref="Rent"/>.
/// Note: QEMU 7.2's own helper accepts a single connection, so against it use size 1.
/// </summary>
public sealed class ProxyClientPool : IDisposable
{
    private readonly Func<ProxyClient> _connect;
    private readonly SemaphoreSlim _slots;
    private readonly Stack<ProxyClient> _idle = new();
    private readonly object _lock = new();
    private bool _disposed;

    public ProxyClientPool(Func<ProxyClient> connect, int size)
    {
        ArgumentNullException.ThrowIfNull(connect);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        _connect = connect;
        _slots = new SemaphoreSlim(size, size);
    }

    /// <summary>Blocks until a connection is free. Throws <see cref="ProxyConnectionException"/> if a new
    /// connection cannot be made (the caller answers EIO).</summary>
    public ProxyClientLease Rent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _slots.Wait();
        lock (_lock)
        {
            while (_idle.Count > 0)
            {
                var c = _idle.Pop();
                if (!c.PeerClosed()) return new ProxyClientLease(this, c);
                c.Dispose();
            }
        }
        try
        {
            return new ProxyClientLease(this, _connect());
        }
        catch (Exception e)
        {
            _slots.Release();
            if (e is ProxyConnectionException) throw;
            throw new ProxyConnectionException("cannot connect to the proxy helper: " + e.Message, e);
        }
    }

    internal void Return(ProxyClient client)
    {
        bool dispose;
        lock (_lock)
        {
            dispose = _disposed || client.IsBroken;
            if (!dispose) _idle.Push(client);
        }
        if (dispose) client.Dispose();
        _slots.Release();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            while (_idle.Count > 0) _idle.Pop().Dispose();
        }
    }
}

/// <summary>A rented connection; dispose exactly once to give it back.</summary>
public struct ProxyClientLease : IDisposable
{
    private ProxyClientPool? _pool;

    internal ProxyClientLease(ProxyClientPool pool, ProxyClient client)
    {
        _pool = pool;
        Client = client;
    }

    public ProxyClient Client { get; }

    public void Dispose()
    {
        var pool = _pool;
        _pool = null;
        pool?.Return(Client);
    }
}

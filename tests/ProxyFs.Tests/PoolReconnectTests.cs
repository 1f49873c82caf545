using Tmds.Linux;
using VirtFs.ProxyFs;
using static Tmds.Linux.LibC;

namespace VirtFs.ProxyFs.Tests;

/// <summary>After the helper restarts, idle pooled connections are dead; the pool must notice before use
/// instead of failing the next requests.</summary>
public class PoolReconnectTests
{
    private static unsafe (ProxyClient Client, int PeerFd) Pair()
    {
        int* fds = stackalloc int[2];
        Assert.Equal(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
        return (ProxyClient.FromFd(fds[0]), fds[1]);
    }

    [Fact]
    public void Idle_connection_whose_peer_closed_is_replaced_on_rent()
    {
        var made = new List<(ProxyClient Client, int PeerFd)>();
        using var pool = new ProxyClientPool(() => { var p = Pair(); made.Add(p); return p.Client; }, 1);

        ProxyClient first;
        using (var lease = pool.Rent()) first = lease.Client;
        Assert.Single(made);

        close(made[0].PeerFd); // the helper died
        ProxyClient second;
        using (var lease = pool.Rent()) second = lease.Client;
        Assert.NotSame(first, second);
        Assert.True(first.IsBroken);
        Assert.Equal(2, made.Count);
        close(made[1].PeerFd);
    }

    [Fact]
    public void Idle_connection_with_a_live_peer_is_reused()
    {
        var made = new List<(ProxyClient Client, int PeerFd)>();
        using var pool = new ProxyClientPool(() => { var p = Pair(); made.Add(p); return p.Client; }, 1);
        ProxyClient first, second;
        using (var lease = pool.Rent()) first = lease.Client;
        using (var lease = pool.Rent()) second = lease.Client;
        Assert.Same(first, second);
        Assert.False(first.PeerClosed());
        close(made[0].PeerFd);
    }
}

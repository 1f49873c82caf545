using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests.Transport;

/// <summary>
/// A kick fd comes from the front-end, which shares its open file description and so its O_NONBLOCK: a hostile
/// QEMU clears the flag again after we set it. A read(2) of an empty blocking eventfd then waits forever, on the
/// connection thread (the SET_VRING_KICK probe) or the queue thread (the drain after a wake-up), and a disconnect
/// joins that thread forever. The reads must never wait, whatever the flag says.
/// </summary>
public sealed class EventFdTests
{
    [Fact]
    public void Probing_and_draining_an_empty_blocking_eventfd_never_wait()
    {
        using FdHandle kick = EventFd.Create(nonBlocking: false); // the front-end cleared O_NONBLOCK
        bool probe = false;
        // A thread of its own: before the fix it stayed blocked in read(2), and only a background thread can be
        // left there.
        var reader = new Thread(() =>
        {
            probe = EventFd.ReadsLikeEventFd(kick);
            EventFd.Drain((int)kick.DangerousGetHandle());
        }) { IsBackground = true };
        reader.Start();
        Assert.True(reader.Join(TimeSpan.FromSeconds(10)), "a read of an empty eventfd waited");
        Assert.True(probe);
    }

    [Fact]
    public unsafe void The_probe_still_tells_an_eventfd_from_other_anonymous_inode_fds()
    {
        using FdHandle kick = EventFd.Create(nonBlocking: false);
        Assert.True(EventFd.Signal(kick));
        Assert.True(EventFd.ReadsLikeEventFd(kick)); // 8 bytes: the pending kick, consumed
        using var epoll = new FdHandle(epoll_create1(EPOLL_CLOEXEC));
        Assert.False(EventFd.ReadsLikeEventFd(epoll));
    }
}

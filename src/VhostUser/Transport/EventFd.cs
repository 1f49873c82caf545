using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>eventfd helpers. Writes go through SafeHandle refcounting so a concurrent replace never hits a reused fd.</summary>
internal static partial class EventFd
{
    public static FdHandle Create(bool nonBlocking = false)
    {
        int fd = eventfd(0, EFD_CLOEXEC | (nonBlocking ? EFD_NONBLOCK : 0));
        if (fd < 0)
        {
            throw new IOException($"eventfd failed: errno {errno}");
        }
        return new FdHandle(fd);
    }

    /// <summary>Adds 1 to the counter. Returns false if the fd is closed or the write failed. A full counter
    /// (EAGAIN on a non-blocking fd) counts as signalled: the reader has a wake-up pending anyway.
    /// Blocks if the fd's description is blocking and the counter full, so front-end fds are written only
    /// by a <see cref="QueueNotifier"/>.</summary>
    public static unsafe bool Signal(FdHandle? handle)
    {
        if (handle is null)
        {
            return false;
        }
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            ulong one = 1;
            // SAFETY: writes 8 bytes from a local; the fd is kept open by the AddRef above.
            return write(handle.Fd, &one, 8) == 8 || errno == EAGAIN;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>Adds 1 to the counter only if poll says a write will not block; a counter with no room counts as
    /// signalled. True when handled (written, full, or no fd); false on an error, for the caller to retry
    /// another way.</summary>
    public static unsafe bool SignalIfRoom(FdHandle? handle)
    {
        if (handle is null) return true;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var p = new pollfd { fd = handle.Fd, events = (short)POLLOUT };
            // SAFETY: p is a local; the fd is kept open by the AddRef above.
            int ready = poll(&p, 1, 0);
            if (ready < 0) return false;
            if (ready == 0 || (p.revents & POLLOUT) == 0) return true; // full: already signalled
            ulong one = 1;
            // SAFETY: writes 8 bytes from a local; the fd is kept open by the AddRef above.
            return write(handle.Fd, &one, 8) == 8 || errno == EAGAIN;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>
    /// Makes a front-end supplied notification fd non-blocking, so a full counter (or a full pipe passed instead of
    /// an eventfd) answers EAGAIN. Eventfds from QEMU are already non-blocking. The front-end shares the open
    /// file description and can clear the flag again; that is why only a <see cref="QueueNotifier"/> thread
    /// writes call and err fds. False on failure.
    /// </summary>
    public static bool MakeNonBlocking(FdHandle handle)
    {
        int flags = fcntl(handle.Fd, F_GETFL);
        return flags >= 0 && fcntl(handle.Fd, F_SETFL, flags | O_NONBLOCK) == 0;
    }

    /// <summary>The (st_dev, st_ino) every eventfd shares: eventfds live on the kernel's one anonymous inode.</summary>
    private static readonly Lazy<(ulong Dev, ulong Ino)?> AnonInode = new(() =>
    {
        using FdHandle probe = Create(nonBlocking: true);
        return Identity(probe.Fd);
    });

    private static unsafe (ulong Dev, ulong Ino)? Identity(int fd)
    {
        stat st;
        // SAFETY: st is a local the kernel fills.
        return fstat(fd, &st) == 0 ? ((ulong)st.st_dev, (ulong)st.st_ino) : null;
    }

    /// <summary>
    /// Whether a front-end's kick/call/err fd is an eventfd (or at least another anonymous-inode fd). Stops a
    /// front-end that passes a pipe or socket at EOF as a kick fd: epoll reports it readable forever, a drain
    /// never empties it, and the queue thread would spin at 100% CPU; a regular file or memfd cannot be polled
    /// at all and a call/err write would grow it. QEMU's event notifiers are always eventfds on Linux.
    /// </summary>
    public static bool IsEventFd(FdHandle handle)
    {
        (ulong Dev, ulong Ino)? reference = AnonInode.Value;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return reference is not null && Identity(handle.Fd) == reference;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// For a kick fd, after <see cref="IsEventFd"/> and <see cref="MakeNonBlocking"/>: one read must behave like an
    /// eventfd's (8 bytes, or EAGAIN when the counter is 0). Other anonymous-inode fds (epoll, signalfd, inotify,
    /// userfaultfd) share the eventfd's inode but fail an 8-byte read, so the queue thread's drain would never
    /// quiet them and it would spin. Consuming a pending kick is harmless: a started ring looks at the avail ring
    /// once before it waits. Never used on call/err fds, where a read would eat the guest's interrupt.
    /// </summary>
    public static unsafe bool ReadsLikeEventFd(FdHandle handle)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            long n = ReadNoWait(handle.Fd, out int error);
            return n == 8 || (n < 0 && error == EAGAIN);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>Reads (and so resets) the counter of a raw fd; errors (EAGAIN) are ignored.</summary>
    public static void Drain(int fd) => _ = ReadNoWait(fd, out _);

    /// <summary>
    /// An 8-byte read that never waits: preadv2(RWF_NOWAIT), which eventfds honour (Linux 5.12, the helper's floor
    /// already) with EAGAIN on a zero counter. A plain read(2) waited forever when the front-end, which shares the
    /// file description, cleared O_NONBLOCK again: on the connection thread in the kick probe, or on the queue
    /// thread in its drain, and a disconnect then joined that thread forever. Fds that do not support RWF_NOWAIT
    /// (epoll, signalfd, ...) fail it, as they fail the probe anyway.
    /// </summary>
    private static unsafe long ReadNoWait(int fd, out int error)
    {
        ulong value;
        var iov = new iovec { iov_base = &value, iov_len = 8 };
        // SAFETY: reads at most 8 bytes into a local, through one iovec that lives on this frame; offset -1 reads
        // at the file position, as read(2) does (an eventfd has none).
        long n = Preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
        error = n < 0 ? System.Runtime.InteropServices.Marshal.GetLastPInvokeError() : 0;
        return n;
    }

    private const int RWF_NOWAIT = 0x00000008;

    /// <summary>preadv2(2): Tmds.LibC lacks it. (The 9p server has its own for Tread; the two assemblies' internals
    /// are both visible to the tests, so they cannot share one linked source here.)</summary>
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "preadv2", SetLastError = true)]
    private static unsafe partial nint Preadv2(int fd, iovec* iov, int iovcnt, long offset, int flags);
}

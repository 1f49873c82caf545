using System.Text;
using Microsoft.Extensions.Logging;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>
/// Listens on a unix socket path, accepts ONE front-end (QEMU), serves it until it disconnects, then returns.
/// </summary>
public sealed class VhostUserServer
{
    private readonly string _socketPath;
    private readonly IVirtioDevice _device;
    private readonly ILogger _logger;
    /// <summary>A socket already listening (made before confinement, or passed by systemd); null: bind
    /// <see cref="_socketPath"/> in <see cref="RunAsync"/>.</summary>
    private FdHandle? _listener;
    /// <summary>Whether the path is ours to remove (not when systemd owns the socket).</summary>
    private readonly bool _ownsPath = true;

    /// <summary>Serves on an inherited socket that is already listening (systemd socket activation, --fd):
    /// <paramref name="name"/> is only for the log, and no path is removed at the end.</summary>
    public VhostUserServer(int listeningFd, string name, IVirtioDevice device, ILogger logger)
        : this(name, device, logger)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(listeningFd);
        _listener = new FdHandle(listeningFd);
        _ownsPath = false;
    }

    /// <summary>Binds the socket path now rather than in <see cref="RunAsync"/>: before the process confines
    /// itself, so it may still set the socket's group (<paramref name="groupId"/>: rw for that group, mode 0660).</summary>
    public unsafe void ListenNow(int? groupId)
    {
        if (_listener is not null)
        {
            return;
        }
        FdHandle listener = Listen(_socketPath, _logger);
        if (groupId is int gid)
        {
            byte[] path = Encoding.UTF8.GetBytes(_socketPath + "\0");
            fixed (byte* p = path)
            {
                // SAFETY: p is the NUL-terminated path, pinned for both calls.
                if (chown(p, uint.MaxValue, (uint)gid) != 0 || chmod(p, 0x1B0 /* 0660 */) != 0)
                {
                    int error = errno;
                    listener.Dispose();
                    TryUnlink();
                    throw new IOException($"cannot give group {gid} access to {_socketPath}: errno {error}");
                }
            }
        }
        _listener = listener;
    }

    public VhostUserServer(string socketPath, IVirtioDevice device, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(logger);
        if (device.QueueCount < 1 || device.QueueCount > VhostUserLimits.MaxQueues)
        {
            throw new ArgumentOutOfRangeException(nameof(device), device.QueueCount, "QueueCount must be in 1..64");
        }
        if (device.Config.Length > VhostUserLimits.MaxConfigSize)
        {
            throw new ArgumentOutOfRangeException(nameof(device), device.Config.Length, "Config is at most 256 bytes");
        }
        _socketPath = socketPath;
        _device = device;
        _logger = logger;
    }

    /// <summary>
    /// Removes a stale socket file, listens, accepts one front-end and serves it on a dedicated thread until it
    /// disconnects or <paramref name="cancellationToken"/> fires (then the task completes normally). Cleans up
    /// (socket file, fds, guest memory, queue threads) on exit. A front-end protocol violation is logged and ends
    /// the connection; it does not fault the task.
    /// </summary>
    public Task RunAsync(CancellationToken cancellationToken)
    {
        FdHandle stop = EventFd.Create(nonBlocking: true);
        FdHandle listener;
        try
        {
            listener = Interlocked.Exchange(ref _listener, null) ?? Listen(_socketPath, _logger);
        }
        catch
        {
            stop.Dispose();
            throw;
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        CancellationTokenRegistration registration = cancellationToken.Register(() => EventFd.Signal(stop));
        var thread = new Thread(() =>
        {
            Exception? failure = null;
            try
            {
                Serve(listener, stop);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "vhost-user: server failed");
                failure = e;
            }
            finally
            {
                registration.Dispose();
                listener.Dispose();
                TryUnlink();
                stop.Dispose();
            }
            // Completed only after cleanup, so callers see the socket file gone.
            if (failure is null)
            {
                done.TrySetResult();
            }
            else
            {
                done.TrySetException(failure);
            }
        })
        {
            Name = "vhost-user",
            IsBackground = true,
        };
        thread.Start();
        return done.Task;
    }

    private void Serve(FdHandle listener, FdHandle stop)
    {
        _logger.LogInformation("vhost-user: listening on {Path}", _socketPath);
        FdHandle? client = Accept(listener, stop);
        if (client is null)
        {
            _logger.LogInformation("vhost-user: stopped before a front-end connected");
            return;
        }
        // One front-end only: stop listening and remove the path right away.
        listener.Dispose();
        TryUnlink();
        _logger.LogInformation("vhost-user: front-end connected");
        using var connection = new Connection(new MessageChannel(client, stop), _device, _logger);
        connection.Run();
        _logger.LogInformation("vhost-user: front-end disconnected");
    }

    /// <summary>Binds and listens on <paramref name="socketPath"/>, replacing a stale socket there.</summary>
    private static FdHandle Listen(string socketPath, ILogger logger)
    {
        TryUnlinkStale(socketPath, logger);
        return Bind(socketPath);
    }

    private static unsafe FdHandle Bind(string socketPath)
    {
        byte[] path = Encoding.UTF8.GetBytes(socketPath);
        sockaddr_un addr = default;
        if (path.Length >= sockaddr_un.sun_path_length)
        {
            throw new ArgumentException($"socket path too long: {socketPath}");
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new IOException($"socket failed: errno {errno}");
        }
        var handle = new FdHandle(fd);
        try
        {
            addr.sun_family = AF_UNIX;
            // SAFETY: path.Length < sun_path_length (checked above), addr is a local of the right type.
            byte* sp = (byte*)&addr + sockaddr_un.sun_path_offset;
            for (int i = 0; i < path.Length; i++)
            {
                sp[i] = path[i];
            }
            if (bind(fd, (sockaddr*)&addr, sizeof(sockaddr_un)) != 0)
            {
                throw new IOException($"bind {socketPath} failed: errno {errno}");
            }
            if (listen(fd, 1) != 0)
            {
                throw new IOException($"listen failed: errno {errno}");
            }
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static unsafe FdHandle? Accept(FdHandle listener, FdHandle stop)
    {
        pollfd* p = stackalloc pollfd[2];
        while (true)
        {
            p[0].fd = listener.Fd;
            p[0].events = POLLIN;
            p[0].revents = 0;
            p[1].fd = stop.Fd;
            p[1].events = POLLIN;
            p[1].revents = 0;
            // SAFETY: two pollfd structs on the stack.
            int r = poll(p, 2, -1);
            if (r < 0)
            {
                if (errno == EINTR)
                {
                    continue;
                }
                throw new IOException($"poll failed: errno {errno}");
            }
            if (p[1].revents != 0)
            {
                return null;
            }
            int fd = accept4(listener.Fd, null, null, SOCK_CLOEXEC);
            if (fd >= 0)
            {
                return new FdHandle(fd);
            }
            int e = errno;
            if (e != EINTR && e != EAGAIN && e != ECONNABORTED)
            {
                throw new IOException($"accept failed: errno {e}");
            }
        }
    }

    private static void TryUnlinkStale(string socketPath, ILogger logger)
    {
        // Only a leftover socket (or a dangling file of ours) is removed; a directory is a configuration error.
        var info = new FileInfo(socketPath);
        if (info.Exists || info.LinkTarget is not null)
        {
            logger.LogInformation("vhost-user: removing stale {Path}", socketPath);
            info.Delete();
        }
    }

    private void TryUnlink()
    {
        if (!_ownsPath)
        {
            return;
        }
        try
        {
            File.Delete(_socketPath);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

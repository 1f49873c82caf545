using System.Text;
using Microsoft.Extensions.Logging;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser;

/// <summary>
/// Listens on a unix socket path and serves one front-end (QEMU) at a time: until it disconnects, then returns, or,
/// with keep-listening, listens again and serves the next one with a fresh device. The socket path exists only
/// while the server waits for a front-end, so a second QEMU started against a busy backend fails at once
/// instead of hanging in its first request.
/// </summary>
public sealed class VhostUserServer
{
    private readonly string _socketPath;
    private readonly Func<IVirtioDevice> _newDevice;
    private readonly bool _ownsDevices;
    private readonly bool _keepListening;
    private readonly ILogger _logger;

    /// <summary>Serves one front-end with <paramref name="device"/> (the caller owns it).</summary>
    public VhostUserServer(string socketPath, IVirtioDevice device, ILogger logger)
        : this(socketPath, () => device, logger, keepListening: false, ownsDevices: false)
    {
        ArgumentNullException.ThrowIfNull(device);
        Check(device);
    }

    /// <summary>
    /// Serves front-ends with a device from <paramref name="newDevice"/> each: no state of one front-end (its
    /// sessions, open files, requests still running) reaches the next. A device that is <see cref="IDisposable"/> is
    /// disposed when its front-end has gone. Without <paramref name="keepListening"/> only one front-end is served.
    /// </summary>
    public VhostUserServer(string socketPath, Func<IVirtioDevice> newDevice, ILogger logger, bool keepListening)
        : this(socketPath, newDevice, logger, keepListening, ownsDevices: true)
    {
    }

    private VhostUserServer(string socketPath, Func<IVirtioDevice> newDevice, ILogger logger, bool keepListening, bool ownsDevices)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(newDevice);
        ArgumentNullException.ThrowIfNull(logger);
        _socketPath = socketPath;
        _newDevice = newDevice;
        _logger = logger;
        _keepListening = keepListening;
        _ownsDevices = ownsDevices;
    }

    private static void Check(IVirtioDevice device)
    {
        if (device.QueueCount < 1 || device.QueueCount > VhostUserLimits.MaxQueues)
        {
            throw new ArgumentOutOfRangeException(nameof(device), device.QueueCount, "QueueCount must be in 1..64");
        }
        if (device.Config.Length > VhostUserLimits.MaxConfigSize)
        {
            throw new ArgumentOutOfRangeException(nameof(device), device.Config.Length, "Config is at most 256 bytes");
        }
    }

    /// <summary>
    /// Connect to the front-end's socket instead of listening on it: QEMU is then the server
    /// (<c>-chardev socket,server=on</c>), and a restarted backend finds it again by connecting. The path is
    /// retried until it accepts a connection; with keep-listening, the next connection follows each disconnect.
    /// </summary>
    public bool ConnectToFrontEnd { get; init; }

    /// <summary>Front-ends served so far (connected, whether or not they got far).</summary>
    public int FrontEndsServed => Volatile.Read(ref _served);

    private int _served;

    /// <summary>
    /// Removes a stale socket file, listens, accepts a front-end and serves it on a dedicated thread until it
    /// disconnects (then, with keep-listening, the next) or <paramref name="cancellationToken"/> fires (then the
    /// task completes normally). Cleans up (socket file, fds, guest memory, queue threads) on exit. A front-end
    /// protocol violation is logged and ends the connection; it does not fault the task.
    /// </summary>
    public Task RunAsync(CancellationToken cancellationToken)
    {
        FdHandle stop = EventFd.Create(nonBlocking: true);
        FdHandle? listener;
        try
        {
            listener = ConnectToFrontEnd ? null : Listen();
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
            FdHandle? current = listener;
            try
            {
                Serve(ref current, stop, cancellationToken);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "vhost-user: server failed");
                failure = e;
            }
            finally
            {
                registration.Dispose();
                if (current is not null)
                {
                    current.Dispose();
                    TryUnlink(); // ours: only a listener is
                }
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

    private void Serve(ref FdHandle? listener, FdHandle stop, CancellationToken cancellationToken)
    {
        while (true)
        {
            FdHandle? client;
            if (ConnectToFrontEnd)
            {
                _logger.LogInformation("vhost-user: connecting to the front-end at {Path}", _socketPath);
                client = ConnectWithRetry(stop);
            }
            else
            {
                if (listener is null)
                {
                    listener = Listen();
                    _logger.LogInformation("vhost-user: waiting for the next front-end");
                }
                _logger.LogInformation("vhost-user: listening on {Path}", _socketPath);
                client = Accept(listener, stop);
            }
            if (client is null)
            {
                _logger.LogInformation("vhost-user: stopped before a front-end connected");
                return;
            }
            if (listener is not null)
            {
                // One front-end at a time: stop listening and remove the path right away.
                listener.Dispose();
                listener = null;
                TryUnlink();
            }
            Interlocked.Increment(ref _served);
            ServeOne(client, stop);
            if (!_keepListening || cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private void ServeOne(FdHandle client, FdHandle stop)
    {
        IVirtioDevice device;
        try
        {
            device = _newDevice();
            Check(device);
        }
        catch
        {
            client.Dispose();
            throw;
        }
        _logger.LogInformation("vhost-user: front-end connected");
        try
        {
            using var connection = new Connection(new MessageChannel(client, stop), device, _logger);
            connection.Run();
        }
        finally
        {
            if (_ownsDevices && device is IDisposable disposable)
            {
                disposable.Dispose();
            }
        }
        _logger.LogInformation("vhost-user: front-end disconnected");
    }

    private unsafe FdHandle Listen()
    {
        TryUnlinkStale();
        sockaddr_un addr = Address();
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new IOException($"socket failed: errno {errno}");
        }
        var handle = new FdHandle(fd);
        try
        {
            // SAFETY: addr is a filled local sockaddr_un.
            if (bind(fd, (sockaddr*)&addr, sizeof(sockaddr_un)) != 0)
            {
                throw new IOException($"bind {_socketPath} failed: errno {errno}");
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

    /// <summary>Connects to the front-end's listening socket, trying again every 100 ms while it is absent or
    /// refuses (QEMU not started yet, or between two connections); null when stopped meanwhile.</summary>
    private unsafe FdHandle? ConnectWithRetry(FdHandle stop)
    {
        sockaddr_un addr = Address();
        bool logged = false;
        while (true)
        {
            int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0)
            {
                throw new IOException($"socket failed: errno {errno}");
            }
            var handle = new FdHandle(fd);
            // SAFETY: addr is a filled local sockaddr_un.
            if (connect(fd, (sockaddr*)&addr, sizeof(sockaddr_un)) == 0)
            {
                return handle;
            }
            int e = errno;
            handle.Dispose();
            if (e != ENOENT && e != ECONNREFUSED && e != EINTR && e != EAGAIN)
            {
                throw new IOException($"connect {_socketPath} failed: errno {e}");
            }
            if (!logged)
            {
                logged = true;
                _logger.LogInformation("vhost-user: {Path} does not accept connections yet (errno {Errno}); retrying", _socketPath, e);
            }
            pollfd p = default;
            p.fd = stop.Fd;
            p.events = POLLIN;
            // SAFETY: one pollfd on the stack.
            if (poll(&p, 1, 100) > 0)
            {
                return null;
            }
        }
    }

    private unsafe sockaddr_un Address()
    {
        byte[] path = Encoding.UTF8.GetBytes(_socketPath);
        if (path.Length >= sockaddr_un.sun_path_length)
        {
            throw new ArgumentException($"socket path too long: {_socketPath}");
        }
        sockaddr_un addr = default;
        addr.sun_family = AF_UNIX;
        // SAFETY: path.Length < sun_path_length (checked above), addr is a local of the right type.
        byte* sp = (byte*)&addr + sockaddr_un.sun_path_offset;
        for (int i = 0; i < path.Length; i++)
        {
            sp[i] = path[i];
        }
        return addr;
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

    private void TryUnlinkStale()
    {
        // Only a leftover socket (or a dangling file of ours) is removed; a directory is a configuration error.
        var info = new FileInfo(_socketPath);
        if (info.Exists || info.LinkTarget is not null)
        {
            _logger.LogInformation("vhost-user: removing stale {Path}", _socketPath);
            info.Delete();
        }
    }

    private void TryUnlink()
    {
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

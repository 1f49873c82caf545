using Microsoft.Extensions.Logging;

namespace VirtFs.VhostUser;

/// <summary>One front-end connection: the message loop and the vhost-user state it drives.</summary>
internal sealed partial class Connection : IDisposable
{
    private readonly MessageChannel _channel;
    private readonly IVirtioDevice _device;
    private readonly ILogger _logger;

    public Connection(MessageChannel channel, IVirtioDevice device, ILogger logger)
    {
        _channel = channel;
        _device = device;
        _logger = logger;
    }

    public void Run()
    {
    }

    public void Dispose() => _channel.Dispose();
}

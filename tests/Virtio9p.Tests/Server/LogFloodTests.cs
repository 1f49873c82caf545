using System.Buffers.Binary;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;
using VirtFs.Virtio9p.Server;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Issue 13 item 8: a guest sending bad or chatty requests in a loop must not flood the host's log.</summary>
public sealed class LogFloodTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("p9log-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class CountingLogger : ILogger
    {
        public ConcurrentQueue<string> Lines { get; } = new();
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue(formatter(state, exception));
    }

    [Fact]
    public void Guest_triggered_log_lines_are_rate_limited()
    {
        using var fs = new LocalFileSystem(_dir);
        var logger = new CountingLogger();
        var server = new P9Server(fs, logger);
        var buffers = new WorkerBuffers();
        const int Rounds = 500;
        for (int i = 0; i < Rounds; i++)
        {
            Send(new byte[3]); // shorter than a header
            byte[] lie = new byte[P9Limits.HeaderSize + 4];
            BinaryPrimitives.WriteUInt32LittleEndian(lie, 999); // size field that is not the length
            lie[4] = (byte)T.Tclunk;
            Send(lie);
            byte[] truncated = new byte[P9Limits.HeaderSize + 2]; // Tclunk without its fid: malformed
            BinaryPrimitives.WriteUInt32LittleEndian(truncated, (uint)truncated.Length);
            truncated[4] = (byte)T.Tclunk;
            Send(truncated);
            byte[] version = new byte[P9Limits.HeaderSize + 4 + 2 + 8];
            BinaryPrimitives.WriteUInt32LittleEndian(version, (uint)version.Length);
            version[4] = (byte)T.Tversion;
            BinaryPrimitives.WriteUInt32LittleEndian(version.AsSpan(P9Limits.HeaderSize), 8192);
            BinaryPrimitives.WriteUInt16LittleEndian(version.AsSpan(P9Limits.HeaderSize + 4), 8);
            "9P2000.L"u8.CopyTo(version.AsSpan(P9Limits.HeaderSize + 6));
            Send(version);
        }
        // Four kinds of line, each allowed a few per interval: nowhere near one per request.
        Assert.InRange(logger.Lines.Count, 4, 4 * 2 * VirtFs.VhostUser.Diagnostics.LogRateLimiter.DefaultMaxLines);

        void Send(byte[] message)
        {
            using var exchange = new ScatteredExchange(message, 8192, null, null);
            server.Serve(exchange, buffers, out _);
        }
    }

    /// <summary>A guest that resets its virtio device in a loop makes the front-end stop the ring each time
    /// (GET_VRING_BASE): the device's stop lines are the guest's to trigger too.</summary>
    [Fact]
    public void Device_stop_lines_are_rate_limited()
    {
        using var fs = new LocalFileSystem(_dir);
        var logger = new CountingLogger();
        using var device = new VirtFs.Virtio9p.Device.Virtio9pDevice("tag", new P9Server(fs, logger), 1, logger);
        for (int i = 0; i < 500; i++)
        {
            device.OnStopped();
        }
        Assert.InRange(logger.Lines.Count, 1, 3 * VirtFs.VhostUser.Diagnostics.LogRateLimiter.DefaultMaxLines);
    }
}

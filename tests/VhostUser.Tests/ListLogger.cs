using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace VirtFs.VhostUser.Tests;

internal sealed class ListLogger : ILogger
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Entries.Enqueue((logLevel, formatter(state, exception) + (exception is null ? "" : " " + exception)));

    public bool Contains(LogLevel level, string text) => Entries.Any(e => e.Level == level && e.Message.Contains(text));
}

using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Compact;
using Serilog.Formatting.Display;
using VirtFs.Common;

namespace VirtFs.Virtio9p.Diagnostics;

/// <summary>
/// Where the backend's log goes, decided once at start:
/// --syslog: syslog(3) (LOG_DAEMON, ident vhost-user-9p); --log-format json: compact JSON lines (CLEF) on stderr;
/// stderr a terminal: readable text; stderr connected to journald ($JOURNAL_STREAM, as under systemd): text with
/// the "&lt;N&gt;" priority prefix journald turns into the entry's level; anything else (a file, a pipe): plain text.
/// At the default level (info) the backend logs start, connection events and errors, never a line per request.
/// </summary>
internal static class LogSetup
{
    private const string TextTemplate = "{Timestamp:HH:mm:ss.fff} [{Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}";
    private const string BareTemplate = "{SourceContext}: {Message:lj}{NewLine}{Exception}";

    public static Logger Create(BackendOptions options)
    {
        var configuration = new LoggerConfiguration().MinimumLevel.Is(options.LogLevel switch
        {
            LogLevelOption.Error => LogEventLevel.Error,
            LogLevelOption.Warn => LogEventLevel.Warning,
            LogLevelOption.Debug => LogEventLevel.Debug,
            _ => LogEventLevel.Information,
        })
            // The generic host's start banner ("Press Ctrl+C to shut down", content root) says nothing to an operator.
            .MinimumLevel.Override("Microsoft.Hosting.Lifetime", LogEventLevel.Warning)
            .Enrich.WithProperty("SourceContext", "vhost-user-9p");
        if (options.Syslog)
        {
            SyslogWriter.Open("vhost-user-9p");
            return configuration.WriteTo.Sink(new SyslogSink(new MessageTemplateTextFormatter(BareTemplate.Replace("{NewLine}", "")))).CreateLogger();
        }
        if (options.LogFormat == LogFormat.Json)
        {
            return configuration.WriteTo.Console(new CompactJsonFormatter(), standardErrorFromLevel: LogEventLevel.Verbose).CreateLogger();
        }
        if (!Console.IsErrorRedirected)
        {
            return configuration.WriteTo.Console(standardErrorFromLevel: LogEventLevel.Verbose, outputTemplate: TextTemplate).CreateLogger();
        }
        if (Environment.GetEnvironmentVariable("JOURNAL_STREAM") is { Length: > 0 })
        {
            // journald stamps the time itself; the prefix carries the priority (sd-daemon(3)).
            return configuration.WriteTo.Sink(new JournalStreamSink(new MessageTemplateTextFormatter(BareTemplate))).CreateLogger();
        }
        return configuration.WriteTo.Console(standardErrorFromLevel: LogEventLevel.Verbose, outputTemplate: TextTemplate,
            theme: Serilog.Sinks.SystemConsole.Themes.ConsoleTheme.None).CreateLogger();
    }

    /// <summary>syslog(3) priority of a Serilog level.</summary>
    internal static int Priority(LogEventLevel level) => level switch
    {
        LogEventLevel.Fatal => SyslogWriter.Critical,
        LogEventLevel.Error => SyslogWriter.Error,
        LogEventLevel.Warning => SyslogWriter.Warning,
        LogEventLevel.Information => SyslogWriter.Info,
        _ => SyslogWriter.Debug,
    };

    private sealed class SyslogSink(ITextFormatter formatter) : ILogEventSink
    {
        public void Emit(LogEvent logEvent)
        {
            var text = new StringWriter();
            formatter.Format(logEvent, text);
            SyslogWriter.Write(Priority(logEvent.Level), text.ToString().TrimEnd());
        }
    }

    private sealed class JournalStreamSink(ITextFormatter formatter) : ILogEventSink
    {
        private readonly object _lock = new();

        public void Emit(LogEvent logEvent)
        {
            var text = new StringWriter();
            formatter.Format(logEvent, text);
            string prefix = $"<{Priority(logEvent.Level)}>";
            // Every line of a multi-line message (an exception) carries the prefix, or journald logs it as info.
            string lines = prefix + text.ToString().TrimEnd().ReplaceLineEndings("\n" + prefix) + "\n";
            lock (_lock)
            {
                Console.Error.Write(lines);
            }
        }
    }
}

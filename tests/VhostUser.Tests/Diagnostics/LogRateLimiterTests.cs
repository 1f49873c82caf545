using Microsoft.Extensions.Logging;
using VirtFs.VhostUser.Diagnostics;

namespace VirtFs.VhostUser.Tests.Diagnostics;

public sealed class LogRateLimiterTests
{
    private sealed class ManualTime : TimeProvider
    {
        public long Now;
        public override long TimestampFrequency => 1000;
        public override long GetTimestamp() => Now;
    }

    [Fact]
    public void At_most_n_lines_per_interval_then_one_summary()
    {
        var time = new ManualTime();
        var logger = new ListLogger();
        var limiter = new LogRateLimiter("test lines", maxLines: 3, interval: TimeSpan.FromSeconds(1), time: time);

        int allowed = Enumerable.Range(0, 100).Count(_ => limiter.ShouldLog(logger, LogLevel.Warning));
        Assert.Equal(3, allowed);
        Assert.Empty(logger.Entries);
        Assert.Equal(97, limiter.Suppressed);

        time.Now += 999;
        Assert.False(limiter.ShouldLog(logger, LogLevel.Warning)); // still the same interval
        time.Now += 1;
        Assert.True(limiter.ShouldLog(logger, LogLevel.Warning));
        (LogLevel level, string message) = Assert.Single(logger.Entries);
        Assert.Equal(LogLevel.Warning, level);
        Assert.Equal("test lines: 98 similar lines suppressed", message);
        Assert.Equal(0, limiter.Suppressed);
    }
}

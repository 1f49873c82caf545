namespace VirtFs.VhostUser.Tests.Queue;

/// <summary>
/// Requests a device completes on the queue thread itself (the 9p device's inline reads, writes and getattrs) share
/// one notification per drained batch, but a long batch does not keep the guest waiting for all of it: a guest with
/// many requests in flight (fio's libaio at depth 16, readahead's parallel reads) otherwise sat on finished replies
/// while the queue thread served the rest, and could neither reap them nor queue new ones meanwhile.
/// </summary>
public sealed class InlineNotificationTests
{
    private readonly ListLogger _logger = new();

    /// <summary>Completes every request inline, each after 100 ms (a long batch of inline requests, slowed down so
    /// the test sees it on any machine).</summary>
    private sealed class InlineDevice : IVirtioDevice
    {
        public ulong DeviceFeatures => 0;
        public int QueueCount => 1;
        public ReadOnlyMemory<byte> Config => new byte[2];

        public void HandleRequest(DescriptorChain request)
        {
            Thread.Sleep(100);
            request.Complete(request.CopyToWritable(0, "done"u8));
        }
    }

    [Fact]
    public void A_long_batch_of_inline_requests_is_notified_before_it_ends()
    {
        using EmulatedQemu qemu = EmulatedQemu.Start(new InlineDevice(), _logger, queueSize: 16, features:
            VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx | VirtioFeatures.VhostUserProtocolFeatures);
        MockDriver driver = qemu.Driver;

        // Eight requests published with one store of the avail index and one kick: one drained batch of 800 ms.
        const int count = 8;
        var heads = new ushort[count];
        for (int i = 0; i < count; i++)
        {
            ulong at = qemu.DataGpa + (ulong)i * 64;
            heads[i] = driver.AddChain((at, 1, false), (at + 32, 4, true));
        }
        driver.PublishTogether(heads);
        TestFrontEnd.Kick(qemu.Kick);

        Assert.True(TestFrontEnd.WaitSignalled(qemu.Call, 5000), "no notification at all");
        ushort heard = driver.UsedIdx;
        Assert.True(heard < count, $"the first notification came with all {heard} requests done: it waited for the end of the batch");

        // The rest arrive as a driver reaps them: ask for the next, look again, wait.
        ushort seen = heard;
        DateTime deadline = DateTime.UtcNow.AddSeconds(5);
        while (seen < count && DateTime.UtcNow < deadline)
        {
            driver.SetUsedEvent(seen);
            if (driver.UsedIdx != seen)
            {
                seen = driver.UsedIdx; // completed meanwhile: a driver looks again after asking
                continue;
            }
            if (TestFrontEnd.WaitSignalled(qemu.Call, 100))
            {
                seen = driver.UsedIdx;
            }
        }
        Assert.Equal(count, seen);
    }
}

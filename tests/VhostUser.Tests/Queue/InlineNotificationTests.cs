using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests.Queue;

/// <summary>
/// Requests a device completes on the queue thread itself (the 9p device's inline reads, writes and getattrs) share
/// one notification per drained batch, but a long batch does not keep the guest waiting for all of it: a guest with
/// many requests in flight (fio's libaio at depth 16, readahead's parallel reads) otherwise sat on finished replies
/// while the queue thread served the rest, and could neither reap them nor queue new ones meanwhile.
/// </summary>
public sealed class InlineNotificationTests : IDisposable
{
    private const ulong UserAddr = 0x7f36_0000_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("vhost-inline-notify").FullName;
    private readonly ListLogger _logger = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

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
        using var cts = new CancellationTokenSource();
        var device = new InlineDevice();
        string path = Path.Combine(_dir, "s.sock");
        Task run = new VhostUserServer(path, device, _logger).RunAsync(cts.Token);
        using TestFrontEnd fe = TestFrontEnd.Connect(path);
        using var ram = new GuestRam(1 << 20, 0, UserAddr);
        int kick = TestFrontEnd.NewEventFd(), call = TestFrontEnd.NewEventFd();
        try
        {
            fe.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version,
                VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.ConfigureMemSlots);
            fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.NeedReply,
                VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx | VirtioFeatures.VhostUserProtocolFeatures);
            fe.ExpectAck(VhostUserRequestType.SetFeatures);
            var memReg = new byte[40];
            ram.Description.Write(memReg.AsSpan(8));
            fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
            fe.ExpectAck(VhostUserRequestType.AddMemReg);
            MockDriver driver = MockDriver.Create(ram, 16);
            fe.StartVring(driver, kick, call);

            // Eight requests published with one store of the avail index and one kick: one drained batch of 800 ms.
            const int count = 8;
            ulong data = driver.DataGpa;
            var heads = new ushort[count];
            for (int i = 0; i < count; i++)
            {
                heads[i] = driver.AddChain((data + (ulong)i * 64, 1, false), (data + (ulong)i * 64 + 32, 4, true));
            }
            driver.PublishTogether(heads);
            TestFrontEnd.Kick(kick);

            Assert.True(TestFrontEnd.WaitSignalled(call, 5000), "no notification at all");
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
                if (TestFrontEnd.WaitSignalled(call, 100))
                {
                    seen = driver.UsedIdx;
                }
            }
            Assert.Equal(count, seen);
        }
        finally
        {
            cts.Cancel();
            close(kick);
            close(call);
        }
    }
}

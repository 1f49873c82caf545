using System.Text;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests;

/// <summary>Stopping a ring with requests in flight, restarting it, and memory removal.</summary>
public sealed class ServerStopTests : IDisposable
{
    private const ulong UserAddr = 0x7f34_0000_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("vhost-stop").FullName;
    private readonly ListLogger _logger = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Holds every request until released, then echoes it from another thread.</summary>
    private sealed class HoldingDevice : IVirtioDevice
    {
        private readonly List<DescriptorChain> _held = new();
        public ulong DeviceFeatures => 0;
        public int QueueCount => 1;
        public ReadOnlyMemory<byte> Config => new byte[2];
        public int Count { get { lock (_held) { return _held.Count; } } }

        public void HandleRequest(DescriptorChain request)
        {
            lock (_held)
            {
                _held.Add(request);
            }
        }

        public void ReleaseAllAfter(TimeSpan delay) => Task.Delay(delay).ContinueWith(_ =>
        {
            lock (_held)
            {
                foreach (DescriptorChain r in _held)
                {
                    r.Complete(r.CopyToWritable(0, "done"u8));
                }
                _held.Clear();
            }
        });
    }

    [Fact]
    public async Task GetVringBaseWaitsForInFlightThenRingRestarts()
    {
        var device = new HoldingDevice();
        string path = Path.Combine(_dir, "s.sock");
        using var cts = new CancellationTokenSource();
        Task run = new VhostUserServer(path, device, _logger).RunAsync(cts.Token);
        using TestFrontEnd fe = TestFrontEnd.Connect(path);
        using var ram = new GuestRam(1 << 20, 0, UserAddr);
        int kick = TestFrontEnd.NewEventFd(), call = TestFrontEnd.NewEventFd();
        try
        {
            fe.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version, VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.ConfigureMemSlots);
            fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.NeedReply, VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx | VirtioFeatures.VhostUserProtocolFeatures);
            fe.ExpectAck(VhostUserRequestType.SetFeatures);
            var memReg = new byte[40];
            ram.Description.Write(memReg.AsSpan(8));
            fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
            fe.ExpectAck(VhostUserRequestType.AddMemReg);
            MockDriver driver = MockDriver.Create(ram, 8);
            fe.StartVring(driver, kick, call);

            for (int i = 0; i < 3; i++)
            {
                driver.Publish(driver.AddChain((driver.DataGpa + (ulong)i * 64, 4, true)));
            }
            TestFrontEnd.Kick(kick);
            DateTime deadline = DateTime.UtcNow.AddSeconds(5);
            while (device.Count < 3 && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5);
            }
            Assert.Equal(3, device.Count);
            Assert.Equal(0, driver.UsedIdx);

            // GET_VRING_BASE must wait for the three to complete, then answer 3.
            device.ReleaseAllAfter(TimeSpan.FromMilliseconds(200));
            fe.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            Assert.Equal(new VringState(0, 3), VringState.Read(fe.ExpectReply(VhostUserRequestType.GetVringBase)));
            Assert.Equal(3, driver.UsedIdx);
            Assert.Equal("done", Encoding.ASCII.GetString(ram.Span(driver.DataGpa, 4)));

            // Restart from base 3 (as after a driver restart), with one more request.
            fe.StartVring(driver, kick, call, baseIndex: 3);
            TestFrontEnd.WaitSignalled(call, 0); // forget the notification for the first three
            driver.Publish(driver.AddChain((driver.DataGpa + 0x400, 4, true)));
            TestFrontEnd.Kick(kick);
            deadline = DateTime.UtcNow.AddSeconds(5);
            while (device.Count < 1 && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5);
            }
            device.ReleaseAllAfter(TimeSpan.Zero);
            // Not the first signal: the replaced call fd of the running ring gets one of its own.
            deadline = DateTime.UtcNow.AddSeconds(10);
            while (driver.UsedIdx != 4 && DateTime.UtcNow < deadline)
            {
                TestFrontEnd.WaitSignalled(call, 100);
            }
            Assert.Equal(4, driver.UsedIdx);

            // REM_MEM_REG of an unknown region fails politely; of the real one succeeds.
            var other = new byte[40];
            new MemoryRegionDescription(0x1_0000_0000, 4096, 0x1000, 0).Write(other.AsSpan(8));
            fe.Send(VhostUserRequestType.RemMemReg, TestFrontEnd.NeedReply, other);
            Assert.NotEqual(0UL, fe.ExpectU64(VhostUserRequestType.RemMemReg));
            fe.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            Assert.Equal(new VringState(0, 4), VringState.Read(fe.ExpectReply(VhostUserRequestType.GetVringBase)));
            fe.Send(VhostUserRequestType.RemMemReg, TestFrontEnd.NeedReply, memReg);
            fe.ExpectAck(VhostUserRequestType.RemMemReg);

            fe.Dispose();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            cts.Cancel();
            close(kick);
            close(call);
        }
    }

    /// <summary>Completes each request from the thread pool after its own delay, as the 9P workers do under load.</summary>
    private sealed class SlowDevice : IVirtioDevice
    {
        public ulong DeviceFeatures => 0;
        public int QueueCount => 1;
        public ReadOnlyMemory<byte> Config => new byte[2];
        public int Taken;

        public void HandleRequest(DescriptorChain request)
        {
            int n = Interlocked.Increment(ref Taken);
            Task.Delay(20 + n * 37 % 300).ContinueWith(_ =>
            {
                Span<byte> reply = stackalloc byte[4];
                request.CopyFromReadable(0, reply);
                reply[3] = (byte)'!';
                request.Complete(request.CopyToWritable(0, reply));
            });
        }

        public void OnStopped()
        {
        }
    }

    /// <summary>
    /// SIGTERM (issue 17): the host cancels the server's token while requests are in flight. The server must stop
    /// taking requests, let every taken one complete into the used ring, and only then finish: no lost reply.
    /// </summary>
    [Fact]
    public async Task StopWithRequestsInFlightAnswersEveryOneBeforeFinishing()
    {
        var device = new SlowDevice();
        string path = Path.Combine(_dir, "t.sock");
        using var cts = new CancellationTokenSource();
        Task run = new VhostUserServer(path, device, _logger).RunAsync(cts.Token);
        using TestFrontEnd fe = TestFrontEnd.Connect(path);
        using var ram = new GuestRam(1 << 20, 0, UserAddr);
        int kick = TestFrontEnd.NewEventFd(), call = TestFrontEnd.NewEventFd();
        try
        {
            fe.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version, VhostUserProtocolFeatures.ReplyAck);
            fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.NeedReply, VirtioFeatures.Version1 | VirtioFeatures.VhostUserProtocolFeatures);
            fe.ExpectAck(VhostUserRequestType.SetFeatures);
            var memReg = new byte[40];
            ram.Description.Write(memReg.AsSpan(8));
            fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
            fe.ExpectAck(VhostUserRequestType.AddMemReg);
            MockDriver driver = MockDriver.Create(ram, 32); // two descriptors per request
            fe.StartVring(driver, kick, call);

            const int Requests = 12;
            for (int i = 0; i < Requests; i++)
            {
                ulong b = driver.DataGpa + (ulong)i * 0x100;
                ram.Span(b, 4).Fill((byte)('a' + i));
                driver.Publish(driver.AddChain((b, 4, false), (b + 0x80, 4, true)));
            }
            TestFrontEnd.Kick(kick);
            DateTime deadline = DateTime.UtcNow.AddSeconds(10);
            while (Volatile.Read(ref device.Taken) < Requests && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(2);
            }
            Assert.Equal(Requests, Volatile.Read(ref device.Taken));
            Assert.True(driver.UsedIdx < Requests, "the requests finished before the stop: nothing was in flight");

            cts.Cancel(); // what the host does on SIGTERM
            await run.WaitAsync(TimeSpan.FromSeconds(30));

            Assert.Equal(Requests, driver.UsedIdx);
            for (int i = 0; i < Requests; i++)
            {
                ulong b = driver.DataGpa + (ulong)i * 0x100;
                Assert.Equal(new string((char)('a' + i), 3) + "!", Encoding.ASCII.GetString(ram.Span(b + 0x80, 4)));
            }
            Assert.False(File.Exists(path));
        }
        finally
        {
            close(kick);
            close(call);
        }
    }

    [Fact]
    public async Task ManyWavesCompletedOutOfOrderOnThreadPool()
    {
        var device = new EchoDevice { CompleteOnThreadPool = true };
        string path = Path.Combine(_dir, "w.sock");
        using var cts = new CancellationTokenSource();
        Task run = new VhostUserServer(path, device, _logger).RunAsync(cts.Token);
        using TestFrontEnd fe = TestFrontEnd.Connect(path);
        using var ram = new GuestRam(1 << 20, 0, UserAddr);
        int kick = TestFrontEnd.NewEventFd(), call = TestFrontEnd.NewEventFd();
        try
        {
            fe.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version, VhostUserProtocolFeatures.ReplyAck);
            fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.NeedReply, VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx | VirtioFeatures.VhostUserProtocolFeatures);
            fe.ExpectAck(VhostUserRequestType.SetFeatures);
            var memReg = new byte[40];
            ram.Description.Write(memReg.AsSpan(8));
            fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
            fe.ExpectAck(VhostUserRequestType.AddMemReg);
            MockDriver driver = MockDriver.Create(ram, 16);
            fe.StartVring(driver, kick, call);

            ushort expected = 0;
            for (int wave = 0; wave < 40; wave++)
            {
                for (int i = 0; i < 8; i++)
                {
                    ulong b = driver.DataGpa + (ulong)i * 0x100;
                    ram.Span(b, 4).Fill((byte)(wave + i));
                    driver.Publish(driver.AddChain((b, 4, false), (b + 0x80, 4, true)));
                }
                expected += 8;
                // EVENT_IDX: kick only if the device asked for it (vring_need_event on avail_event).
                TestFrontEnd.Kick(kick);
                driver.SetUsedEvent((ushort)(expected - 1)); // one interrupt when the wave is done
                DateTime deadline = DateTime.UtcNow.AddSeconds(10);
                while (driver.UsedIdx != expected && DateTime.UtcNow < deadline)
                {
                    TestFrontEnd.WaitSignalled(call, 50);
                }
                Assert.Equal(expected, driver.UsedIdx);
                for (int i = 0; i < 8; i++)
                {
                    ulong b = driver.DataGpa + (ulong)i * 0x100;
                    Assert.Equal((byte)(wave + i), ram.Span(b + 0x80, 4)[3]);
                }
            }
            fe.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            Assert.Equal(new VringState(0, expected), VringState.Read(fe.ExpectReply(VhostUserRequestType.GetVringBase)));
            fe.Dispose();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            cts.Cancel();
            close(kick);
            close(call);
        }
    }

    /// <summary>Completes inline from HandleRequest, then stays in it longer than the stop timeout: the queue
    /// thread is busy in the device when GET_VRING_BASE arrives.</summary>
    private sealed class SlowInlineDevice(TimeSpan delay) : IVirtioDevice
    {
        private int _inside;
        public ulong DeviceFeatures => 0;
        public int QueueCount => 1;
        public ReadOnlyMemory<byte> Config => new byte[2];
        public volatile bool Entered;
        public volatile int Returned;
        public int MostInside;

        public void HandleRequest(DescriptorChain request)
        {
            int inside = Interlocked.Increment(ref _inside);
            InterlockedMax(ref MostInside, inside);
            Entered = true;
            request.Complete(request.CopyToWritable(0, "slow"u8));
            Thread.Sleep(delay); // nothing in flight, but the queue thread is still in the device
            Interlocked.Decrement(ref _inside);
            Interlocked.Increment(ref Returned);
        }

        private static void InterlockedMax(ref int target, int value)
        {
            int seen = Volatile.Read(ref target);
            while (value > seen && Interlocked.CompareExchange(ref target, value, seen) != seen)
            {
                seen = Volatile.Read(ref target);
            }
        }
    }

    internal static MockDriver SetUpMemory(TestFrontEnd fe, GuestRam ram)
    {
        fe.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version, VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.ConfigureMemSlots);
        fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.NeedReply, VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx | VirtioFeatures.VhostUserProtocolFeatures);
        fe.ExpectAck(VhostUserRequestType.SetFeatures);
        var memReg = new byte[40];
        ram.Description.Write(memReg.AsSpan(8));
        fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
        fe.ExpectAck(VhostUserRequestType.AddMemReg);
        return MockDriver.Create(ram, 8);
    }

    /// <summary>Issue 13 item 3: requests still in flight when the stop timeout passes used to be counted as
    /// consumed in the vring base and their completions dropped, so the guest waited for them forever. The base
    /// must account for every request: GET_VRING_BASE answers once they are in the used ring.</summary>
    [Fact]
    public async Task GetVringBaseAccountsForRequestsSlowerThanTheStopTimeout()
    {
        var device = new HoldingDevice();
        string path = Path.Combine(_dir, "slow.sock");
        using var cts = new CancellationTokenSource();
        Task run = new VhostUserServer(path, device, _logger).RunAsync(cts.Token);
        using TestFrontEnd fe = TestFrontEnd.Connect(path);
        using var ram = new GuestRam(1 << 20, 0, UserAddr);
        int kick = TestFrontEnd.NewEventFd(), call = TestFrontEnd.NewEventFd();
        try
        {
            MockDriver driver = SetUpMemory(fe, ram);
            fe.StartVring(driver, kick, call);
            for (int i = 0; i < 2; i++)
            {
                driver.Publish(driver.AddChain((driver.DataGpa + (ulong)i * 64, 4, true)));
            }
            TestFrontEnd.Kick(kick);
            DateTime deadline = DateTime.UtcNow.AddSeconds(5);
            while (device.Count < 2 && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5);
            }
            Assert.Equal(2, device.Count);

            device.ReleaseAllAfter(Vring.StopTimeout + TimeSpan.FromSeconds(1));
            fe.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            var reply = fe.Receive(timeoutMs: 20000);
            Assert.True(reply is not null, "GET_VRING_BASE not answered");
            VringState state = VringState.Read(reply.Value.Payload);
            Assert.Equal(2, driver.UsedIdx); // completed into the ring, not dropped
            Assert.Equal(2u, state.Num);
            Assert.Equal("done", Encoding.ASCII.GetString(ram.Span(driver.DataGpa + 64, 4)));

            fe.Dispose();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            cts.Cancel();
            close(kick);
            close(call);
        }
    }

    /// <summary>Issue 13 item 3: a queue thread still inside the device when the stop timeout passed was left
    /// running while the ring snapshot was released, and a later SET_VRING_KICK could run a second thread on
    /// the same ring. GET_VRING_BASE must not answer while the queue thread can still touch the ring, and a
    /// restarted ring has one thread.</summary>
    [Fact]
    public async Task GetVringBaseWaitsForAQueueThreadStuckInTheDevice()
    {
        var device = new SlowInlineDevice(Vring.StopTimeout + TimeSpan.FromSeconds(1));
        string path = Path.Combine(_dir, "stuck.sock");
        using var cts = new CancellationTokenSource();
        Task run = new VhostUserServer(path, device, _logger).RunAsync(cts.Token);
        using TestFrontEnd fe = TestFrontEnd.Connect(path);
        using var ram = new GuestRam(1 << 20, 0, UserAddr);
        int kick = TestFrontEnd.NewEventFd(), call = TestFrontEnd.NewEventFd();
        try
        {
            MockDriver driver = SetUpMemory(fe, ram);
            fe.StartVring(driver, kick, call);
            driver.Publish(driver.AddChain((driver.DataGpa, 4, true)));
            TestFrontEnd.Kick(kick);
            DateTime deadline = DateTime.UtcNow.AddSeconds(5);
            while (!device.Entered && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5);
            }
            Assert.True(device.Entered);

            fe.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            var reply = fe.Receive(timeoutMs: 20000);
            Assert.True(reply is not null, "GET_VRING_BASE not answered");
            Assert.Equal(1, device.Returned); // the queue thread was out of the device before the answer
            Assert.Equal(1u, VringState.Read(reply.Value.Payload).Num);
            Assert.Equal(1, driver.UsedIdx);

            // Restarted on the same ring: one queue thread, the next request served once.
            fe.StartVring(driver, kick, call, baseIndex: 1);
            driver.Publish(driver.AddChain((driver.DataGpa + 64, 4, true)));
            TestFrontEnd.Kick(kick);
            deadline = DateTime.UtcNow.AddSeconds(15);
            while (driver.UsedIdx != 2 && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(20);
            }
            Assert.Equal(2, driver.UsedIdx);
            Assert.Equal(1, device.MostInside);

            fe.Dispose();
            await run.WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally
        {
            cts.Cancel();
            close(kick);
            close(call);
        }
    }
}

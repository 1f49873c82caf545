using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests;

/// <summary>
/// The queue crew (QueueCrew): a device that blocks on a request after <see cref="DescriptorChain.TryHandOffQueue"/>
/// said yes must not hold up the ring, a hand-off refused (no thread free) leaves the caller the queue thread, and a
/// stop waits for the requests so served.
/// </summary>
public sealed class HandOffTests : IDisposable
{
    private const ulong UserAddr = 0x7f35_0000_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("vhost-handoff").FullName;
    private readonly ListLogger _logger = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A request whose first byte is 'B' blocks until <see cref="Release"/>: on the popping thread when
    /// the ring was handed off, else on a thread of the device's own (a refused hand-off must not block the ring).
    /// Any other request is echoed at once, inline.</summary>
    private sealed class BlockingDevice : IVirtioDevice
    {
        private readonly ManualResetEventSlim _gate = new(false);
        public readonly ConcurrentQueue<(char Kind, bool HandedOff, int Thread)> Seen = new();
        public int Blocked;
        public ulong DeviceFeatures => 0;
        public int QueueCount => 1;
        public ReadOnlyMemory<byte> Config => new byte[2];

        public void HandleRequest(DescriptorChain request)
        {
            Span<byte> first = stackalloc byte[1];
            request.CopyFromReadable(0, first);
            if (first[0] != (byte)'B')
            {
                Seen.Enqueue(((char)first[0], false, Environment.CurrentManagedThreadId));
                request.Complete(request.CopyToWritable(0, "fast"u8));
                return;
            }
            bool handedOff = request.TryHandOffQueue();
            Seen.Enqueue(('B', handedOff, Environment.CurrentManagedThreadId));
            if (handedOff)
            {
                Block(request);
            }
            else
            {
                new Thread(() => Block(request)) { IsBackground = true }.Start();
            }
        }

        private void Block(DescriptorChain request)
        {
            Interlocked.Increment(ref Blocked);
            _gate.Wait();
            request.Complete(request.CopyToWritable(0, "slow"u8));
        }

        public void Release() => _gate.Set();
    }

    private sealed class Rig : IDisposable
    {
        private readonly CancellationTokenSource _cts = new();
        private readonly GuestRam _ram = new(1 << 20, 0, UserAddr);
        private readonly byte[] _memReg = new byte[40];
        public readonly TestFrontEnd FrontEnd;
        public readonly MockDriver Driver;
        public readonly Task Run;
        public readonly int Kick = TestFrontEnd.NewEventFd(), Call = TestFrontEnd.NewEventFd();
        private int _next;

        public Rig(string dir, IVirtioDevice device, ListLogger logger)
        {
            string path = Path.Combine(dir, "s.sock");
            Run = new VhostUserServer(path, device, logger).RunAsync(_cts.Token);
            FrontEnd = TestFrontEnd.Connect(path);
            FrontEnd.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version, VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.ConfigureMemSlots);
            FrontEnd.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.NeedReply, VirtioFeatures.Version1 | VirtioFeatures.VhostUserProtocolFeatures);
            FrontEnd.ExpectAck(VhostUserRequestType.SetFeatures);
            _ram.Description.Write(_memReg.AsSpan(8));
            FrontEnd.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, _memReg, _ram.Fd);
            FrontEnd.ExpectAck(VhostUserRequestType.AddMemReg);
            Driver = MockDriver.Create(_ram, 32);
            FrontEnd.StartVring(Driver, Kick, Call);
        }

        /// <summary>Publishes one request (its first byte <paramref name="kind"/>, a 4-byte reply buffer) and kicks.</summary>
        public void Send(char kind) => SendTogether(kind);

        /// <summary>Publishes requests with one store of the avail index, then kicks once.</summary>
        public void SendTogether(params char[] kinds)
        {
            var heads = new ushort[kinds.Length];
            for (int i = 0; i < kinds.Length; i++)
            {
                ulong at = Driver.DataGpa + (ulong)(_next++ % 512) * 64;
                _ram.Span(at, 1)[0] = (byte)kinds[i];
                heads[i] = Driver.AddChain((at, 1, false), (at + 32, 4, true));
            }
            Driver.PublishTogether(heads);
            TestFrontEnd.Kick(Kick);
        }

        public string Reply(int i) => Encoding.ASCII.GetString(_ram.Span(Driver.DataGpa + (ulong)(i % 512) * 64 + 32, 4));

        public void Dispose()
        {
            _cts.Cancel();
            FrontEnd.Dispose();
            close(Kick);
            close(Call);
            _ram.Dispose();
        }
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            Thread.Sleep(2);
        }
    }

    [Fact]
    public void A_request_blocking_after_a_hand_off_does_not_hold_up_the_ring()
    {
        var device = new BlockingDevice();
        using var rig = new Rig(_dir, device, _logger);

        rig.Send('B');
        WaitFor(() => device.Blocked == 1, "the blocking request");
        rig.Send('F');
        WaitFor(() => rig.Driver.UsedIdx == 1, "the fast request behind the blocked one");
        Assert.Equal("fast", rig.Reply(1));

        (char Kind, bool HandedOff, int Thread)[] seen = device.Seen.ToArray();
        Assert.Equal(('B', true), (seen[0].Kind, seen[0].HandedOff));
        Assert.NotEqual(seen[0].Thread, seen[1].Thread); // another crew thread took the kick for F while B blocked

        device.Release();
        WaitFor(() => rig.Driver.UsedIdx == 2, "the released request");
        Assert.Equal("slow", rig.Reply(0));
    }

    [Fact]
    public void With_no_thread_free_the_hand_off_is_refused_and_the_ring_still_flows_and_a_stop_waits_for_all()
    {
        var device = new BlockingDevice();
        using var rig = new Rig(_dir, device, _logger);

        // Each accepted hand-off leaves one more thread blocked; the crew stops growing at MaxThreads. One at a time:
        // with more chains waiting the leader refuses to hand off (next test).
        int blocking = QueueCrew.MaxThreads + 2;
        for (int i = 1; i <= blocking; i++)
        {
            rig.Send('B');
            WaitFor(() => device.Blocked == i, $"blocking request {i}");
        }
        rig.Send('F');
        WaitFor(() => rig.Driver.UsedIdx == 1, "the fast request behind the blocked ones");
        Assert.Equal("fast", rig.Reply(blocking));
        bool[] handedOff = device.Seen.Where(s => s.Kind == 'B').Select(s => s.HandedOff).ToArray();
        Assert.Equal(QueueCrew.MaxThreads - 1, handedOff.Count(h => h)); // the last thread left must stay to take kicks
        Assert.All(handedOff.Skip(QueueCrew.MaxThreads - 1), h => Assert.False(h));

        // GET_VRING_BASE waits for the blocked requests, served on former queue threads or not.
        Task.Delay(200).ContinueWith(_ => device.Release());
        rig.FrontEnd.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
        Assert.Equal(new VringState(0, (uint)blocking + 1), VringState.Read(rig.FrontEnd.ExpectReply(VhostUserRequestType.GetVringBase)));
        Assert.Equal(blocking + 1, rig.Driver.UsedIdx);
        for (int i = 0; i < blocking; i++)
        {
            Assert.Equal("slow", rig.Reply(i));
        }

        // The ring restarts with a fresh crew; threads of the old one that blocked never lead it.
        rig.FrontEnd.StartVring(rig.Driver, rig.Kick, rig.Call, baseIndex: (uint)blocking + 1);
        rig.Send('F');
        WaitFor(() => rig.Driver.UsedIdx == blocking + 2, "a request after the restart");
    }

    [Fact]
    public void With_more_requests_waiting_the_leader_keeps_the_ring_and_hands_off_at_the_last()
    {
        var device = new BlockingDevice();
        using var rig = new Rig(_dir, device, _logger);

        rig.SendTogether('B', 'B', 'F');
        WaitFor(() => device.Blocked == 2 && rig.Driver.UsedIdx == 1, "both blocking requests and the fast one");
        Assert.Equal("fast", rig.Reply(2));
        // Popped with more waiting behind them: refused, so neither waited for a new leader to pop the next.
        Assert.Equal(new[] { ('B', false), ('B', false), ('F', false) }, device.Seen.Select(s => (s.Kind, s.HandedOff)).ToArray());

        rig.SendTogether('B');
        WaitFor(() => device.Blocked == 3, "a blocking request alone in the ring");
        Assert.True(device.Seen.Last().HandedOff);
        device.Release();
        WaitFor(() => rig.Driver.UsedIdx == 4, "the released requests");
    }

    /// <summary>'B' requests block for a random moment (on the popping thread after a hand-off, else on the thread
    /// pool); the rest are answered inline.</summary>
    private sealed class JitterDevice : IVirtioDevice
    {
        public int HandedOff, Refused;
        public ulong DeviceFeatures => 0;
        public int QueueCount => 1;
        public ReadOnlyMemory<byte> Config => new byte[2];

        public void HandleRequest(DescriptorChain request)
        {
            Span<byte> first = stackalloc byte[1];
            request.CopyFromReadable(0, first);
            if (first[0] != (byte)'B')
            {
                request.Complete(request.CopyToWritable(0, "fast"u8));
            }
            else if (request.TryHandOffQueue())
            {
                Interlocked.Increment(ref HandedOff);
                Serve(request);
            }
            else
            {
                Interlocked.Increment(ref Refused);
                ThreadPool.UnsafeQueueUserWorkItem(Serve, request, preferLocal: false);
            }
        }

        private static void Serve(DescriptorChain request)
        {
            if (Random.Shared.Next(4) == 0)
            {
                Thread.Sleep(1);
            }
            else
            {
                Thread.SpinWait(Random.Shared.Next(2000));
            }
            request.Complete(request.CopyToWritable(0, "slow"u8));
        }
    }

    [Fact]
    public void No_request_is_stranded_when_blocking_and_fast_requests_arrive_in_random_groups()
    {
        // A lost kick (the ring let go while a chain waited with notifications off, or a kick taken while another
        // thread owned the ring and nobody drained again) leaves a request unanswered: the wait below times out.
        var device = new JitterDevice();
        using var rig = new Rig(_dir, device, _logger);
        int sent = 0;
        for (int round = 0; round < 400; round++)
        {
            int group = 1 + Random.Shared.Next(4);
            WaitFor(() => sent - rig.Driver.UsedIdx <= 16 - group, "room in the ring"); // two descriptors a request
            rig.SendTogether(Enumerable.Range(0, group).Select(_ => Random.Shared.Next(3) == 0 ? 'F' : 'B').ToArray());
            sent += group;
            if (Random.Shared.Next(2) == 0)
            {
                // A quiet point: no later kick may rescue a request stranded now.
                WaitFor(() => rig.Driver.UsedIdx == (ushort)sent, $"all {sent} requests so far (used {rig.Driver.UsedIdx})");
            }
            else if (Random.Shared.Next(2) == 0)
            {
                Thread.SpinWait(Random.Shared.Next(5000));
            }
        }
        WaitFor(() => rig.Driver.UsedIdx == (ushort)sent, $"all {sent} requests (used {rig.Driver.UsedIdx})");
        Assert.True(device.HandedOff > 0, "no request was ever served after a hand-off");
        Assert.True(device.Refused > 0, "no hand-off was ever refused");
    }

    [Fact]
    public async Task A_front_end_that_leaves_while_a_handed_off_request_blocks_is_let_go_at_once()
    {
        var device = new BlockingDevice();
        var rig = new Rig(_dir, device, _logger);
        try
        {
            rig.Send('B');
            WaitFor(() => device.Blocked == 1, "the blocking request");
            rig.FrontEnd.Dispose();
            // The connection ends without waiting for the request (Abandon); the server goes on (it is cancelled below).
            WaitFor(() => _logger.Contains(LogLevel.Information, "1 requests were in flight"), "the request abandoned");
            WaitFor(() => _logger.Contains(LogLevel.Information, "front-end disconnected"), "the connection's end");
        }
        finally
        {
            device.Release();
            rig.Dispose();
        }
        await rig.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }
}

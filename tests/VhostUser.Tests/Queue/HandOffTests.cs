using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests;

/// <summary>
/// Leader/followers (QueueCrew): a device that blocks on a request after <see cref="DescriptorChain.TryHandOffQueue"/>
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
        public void Send(char kind)
        {
            ulong at = Driver.DataGpa + (ulong)_next++ * 64;
            _ram.Span(at, 1)[0] = (byte)kind;
            Driver.Publish(Driver.AddChain((at, 1, false), (at + 32, 4, true)));
            TestFrontEnd.Kick(Kick);
        }

        public string Reply(int i) => Encoding.ASCII.GetString(_ram.Span(Driver.DataGpa + (ulong)i * 64 + 32, 4));

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
        Assert.NotEqual(seen[0].Thread, seen[1].Thread); // a new leader popped F while the old one blocked in B

        device.Release();
        WaitFor(() => rig.Driver.UsedIdx == 2, "the released request");
        Assert.Equal("slow", rig.Reply(0));
    }

    [Fact]
    public void With_no_thread_free_the_hand_off_is_refused_and_the_ring_still_flows_and_a_stop_waits_for_all()
    {
        var device = new BlockingDevice();
        using var rig = new Rig(_dir, device, _logger);

        // Each accepted hand-off leaves one more thread blocked; the crew stops growing at MaxThreads.
        int blocking = QueueCrew.MaxThreads + 2;
        for (int i = 0; i < blocking; i++)
        {
            rig.Send('B');
        }
        WaitFor(() => device.Blocked == blocking, "every blocking request");
        rig.Send('F');
        WaitFor(() => rig.Driver.UsedIdx == 1, "the fast request behind the blocked ones");
        Assert.Equal("fast", rig.Reply(blocking));
        bool[] handedOff = device.Seen.Where(s => s.Kind == 'B').Select(s => s.HandedOff).ToArray();
        Assert.Equal(QueueCrew.MaxThreads - 1, handedOff.Count(h => h)); // the leader is the last thread left
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

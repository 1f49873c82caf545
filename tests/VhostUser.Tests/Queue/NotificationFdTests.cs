using System.Buffers.Binary;
using System.Diagnostics;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests.Queue;

/// <summary>Issue 13 items 4 and 2: the call and err eventfds the front-end hands us, replaced at runtime or
/// turned against us.</summary>
public sealed unsafe class NotificationFdTests : IDisposable
{
    private const ulong UserAddr = 0x7f12_0000_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("vhost-notify").FullName;
    private readonly ListLogger _logger = new();

    private string SocketPath => Path.Combine(_dir, "vhost.sock");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class Session : IDisposable
    {
        public required TestFrontEnd FrontEnd;
        public required CancellationTokenSource Cts;
        public required Task Run;
        public required GuestRam Ram;
        public required MockDriver Driver;
        public required int Call, Err, Kick;

        public void Dispose()
        {
            FrontEnd.Dispose();
            Cts.Cancel();
            Ram.Dispose();
            foreach (int fd in new[] { Call, Err, Kick })
            {
                close(fd);
            }
        }
    }

    /// <summary>A running, enabled ring with EVENT_IDX, as QEMU sets it up.</summary>
    private Session StartRing()
    {
        var cts = new CancellationTokenSource();
        var server = new VhostUserServer(SocketPath, new EchoDevice(), _logger);
        Task run = server.RunAsync(cts.Token);
        TestFrontEnd fe = TestFrontEnd.Connect(SocketPath);
        var ram = new GuestRam(1 << 20, 0, UserAddr);
        int call = TestFrontEnd.NewEventFd(), err = TestFrontEnd.NewEventFd(), kick = TestFrontEnd.NewEventFd();
        fe.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version,
            VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.ConfigureMemSlots);
        fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.Version, 1 | VirtioFeatures.Version1
            | VirtioFeatures.RingEventIdx | VirtioFeatures.VhostUserProtocolFeatures);
        var memReg = new byte[40];
        ram.Description.Write(memReg.AsSpan(8));
        fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
        fe.ExpectAck(VhostUserRequestType.AddMemReg);
        MockDriver driver = MockDriver.Create(ram, 64);
        fe.StartVring(driver, kick, call, err: err);
        return new Session { FrontEnd = fe, Cts = cts, Run = run, Ram = ram, Driver = driver, Call = call, Err = err, Kick = kick };
    }

    /// <summary>Item 4: a worker that still holds the old call fd when SET_VRING_CALL replaces it signals nothing,
    /// and with EVENT_IDX the guest never asks again. libvhost-user signals the new fd once after every
    /// replacement (vu_set_vring_call_exec); so do we, and the ring keeps working on the new fd.</summary>
    [Fact]
    public void Replacing_the_call_fd_of_a_running_ring_signals_the_new_fd_once()
    {
        using Session s = StartRing();
        int call2 = TestFrontEnd.NewEventFd();
        try
        {
            s.FrontEnd.SendU64(VhostUserRequestType.SetVringCall, TestFrontEnd.NeedReply, 0, call2);
            s.FrontEnd.ExpectAck(VhostUserRequestType.SetVringCall);
            Assert.True(TestFrontEnd.WaitSignalled(call2, 2000), "the new call fd was not signalled after the replacement");
            Assert.False(TestFrontEnd.WaitSignalled(call2, 50), "one signal per replacement, not more");

            ulong data = s.Driver.DataGpa;
            s.Driver.Publish(s.Driver.AddChain((data, 4, false), (data + 0x100, 4, true)));
            TestFrontEnd.Kick(s.Kick);
            Assert.True(TestFrontEnd.WaitSignalled(call2), "no used-buffer notification on the new call fd");
            Assert.Equal(1, s.Driver.UsedIdx);
        }
        finally
        {
            close(call2);
        }
    }

    /// <summary>
    /// Item 2: O_NONBLOCK lives on the open file description the front-end shares with us. A front-end that
    /// clears it and fills the counter to its maximum (0xfffffffffffffffe) makes a plain write(2) block until
    /// someone reads. Neither the queue thread nor anyone holding the used-ring lock may be the one blocked:
    /// GET_VRING_BASE must still be answered at once.
    /// </summary>
    [Theory]
    [InlineData(false)] // call fd, signalled after a completed request
    [InlineData(true)] // err fd, signalled when the driver breaks the ring rules
    public void A_blocking_full_notification_fd_does_not_freeze_the_backend(bool errFd)
    {
        using Session s = StartRing();
        int hostile = errFd ? s.Err : s.Call;
        int flags = fcntl(hostile, F_GETFL);
        Assert.Equal(0, fcntl(hostile, F_SETFL, flags & ~O_NONBLOCK));
        ulong full = 0xffff_ffff_ffff_fffe;
        Assert.Equal(8, (long)write(hostile, &full, 8));
        try
        {
            ulong data = s.Driver.DataGpa;
            if (errFd)
            {
                s.Driver.Publish(s.Driver.AddChain((0xdead_0000_0000, 8, false))); // outside guest memory
            }
            else
            {
                s.Driver.Publish(s.Driver.AddChain((data, 4, false), (data + 0x100, 4, true)));
            }
            TestFrontEnd.Kick(s.Kick);
            if (!errFd)
            {
                var wait = Stopwatch.StartNew();
                while (s.Driver.UsedIdx != 1 && wait.ElapsedMilliseconds < 5000)
                {
                    Thread.Sleep(5);
                }
                Assert.Equal(1, s.Driver.UsedIdx);
            }
            Thread.Sleep(200); // let the backend reach its write of the notification

            var answered = Stopwatch.StartNew();
            s.FrontEnd.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            var reply = s.FrontEnd.Receive(timeoutMs: 2000);
            Assert.True(reply is not null, "GET_VRING_BASE was not answered while a notification fd is blocked");
            Assert.Equal(VhostUserRequestType.GetVringBase, reply.Value.Header.Type);
            Assert.True(answered.ElapsedMilliseconds < 2000, $"answered after {answered.ElapsedMilliseconds} ms");
            Assert.Equal(errFd ? 0u : 1u, VringState.Read(reply.Value.Payload).Num);
        }
        finally
        {
            // Let a writer still blocked on the counter finish, so the server can go away.
            fcntl(hostile, F_SETFL, flags | O_NONBLOCK);
            ulong value;
            read(hostile, &value, 8);
        }
    }
}

using System.Buffers.Binary;
using System.Diagnostics;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests;

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
        fe.SendState(VhostUserRequestType.SetVringNum, TestFrontEnd.Version, 0, 64);
        fe.SendState(VhostUserRequestType.SetVringBase, TestFrontEnd.Version, 0, 0);
        var addr = new byte[40];
        driver.Address().Write(addr);
        fe.Send(VhostUserRequestType.SetVringAddr, TestFrontEnd.Version, addr);
        fe.SendU64(VhostUserRequestType.SetVringCall, TestFrontEnd.Version, 0, call);
        fe.SendU64(VhostUserRequestType.SetVringErr, TestFrontEnd.Version, 0, err);
        fe.SendU64(VhostUserRequestType.SetVringKick, TestFrontEnd.Version, 0, kick);
        fe.SendState(VhostUserRequestType.SetVringEnable, TestFrontEnd.NeedReply, 0, 1);
        fe.ExpectAck(VhostUserRequestType.SetVringEnable);
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
}

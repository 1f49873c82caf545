using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging;
using static Tmds.Linux.LibC;
using Xunit.Abstractions;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace VirtFs.VhostUser.Tests;

/// <summary>Drives a real <see cref="VhostUserServer"/> over a real unix socket, in the order QEMU 11.1's
/// vhost-user-test-device-pci sends its messages (GET_FEATURES ... SET_VRING_ENABLE, then GET_VRING_BASE to stop).</summary>
public sealed class ServerTests : IDisposable
{
    private const ulong Gpa = 0;
    private const ulong UserAddr = 0x7f12_0000_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("vhost-test").FullName;
    private readonly ListLogger _logger = new();

    private string SocketPath => Path.Combine(_dir, "vhost.sock");

    public ServerTests(ITestOutputHelper output) => _output = output;

    private readonly ITestOutputHelper _output;

    public void Dispose()
    {
        foreach (var e in _logger.Entries)
        {
            _output.WriteLine($"{e.Level}: {e.Message}");
        }
        Directory.Delete(_dir, recursive: true);
    }

    private (Task Run, TestFrontEnd FrontEnd, CancellationTokenSource Cts) Start(IVirtioDevice device)
    {
        var cts = new CancellationTokenSource();
        var server = new VhostUserServer(SocketPath, device, _logger);
        Task run = server.RunAsync(cts.Token);
        return (run, TestFrontEnd.Connect(SocketPath), cts);
    }

    private static void Negotiate(TestFrontEnd fe)
    {
        fe.Send(VhostUserRequestType.GetFeatures, TestFrontEnd.Version, default);
        fe.ExpectU64(VhostUserRequestType.GetFeatures);
        fe.Send(VhostUserRequestType.GetProtocolFeatures, TestFrontEnd.Version, default);
        fe.ExpectU64(VhostUserRequestType.GetProtocolFeatures);
        fe.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version,
            VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config
            | VhostUserProtocolFeatures.ConfigureMemSlots | VhostUserProtocolFeatures.Status);
    }

    [Fact]
    public async Task FactsConversationWithEchoRoundTrip()
    {
        var device = new EchoDevice { CompleteOnThreadPool = true };
        (Task run, TestFrontEnd fe, CancellationTokenSource cts) = Start(device);
        using var ram = new GuestRam(1 << 20, Gpa, UserAddr);
        int call1 = TestFrontEnd.NewEventFd(), err = TestFrontEnd.NewEventFd(), kick = TestFrontEnd.NewEventFd();
        int call2 = TestFrontEnd.NewEventFd(), backend = TestFrontEnd.NewEventFd();
        try
        {
            // Start: GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS,
            // SET_BACKEND_REQ_FD, SET_OWNER, GET_FEATURES, SET_VRING_CALL, SET_VRING_ERR.
            fe.Send(VhostUserRequestType.GetFeatures, TestFrontEnd.Version, default);
            ulong features = fe.ExpectU64(VhostUserRequestType.GetFeatures);
            ulong expected = 1 | VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx
                | VirtioFeatures.VhostUserProtocolFeatures;
            Assert.Equal(expected, features);
            fe.Send(VhostUserRequestType.GetProtocolFeatures, TestFrontEnd.Version, default);
            ulong protocol = fe.ExpectU64(VhostUserRequestType.GetProtocolFeatures);
            ulong wanted = VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config
                | VhostUserProtocolFeatures.ConfigureMemSlots;
            Assert.Equal(wanted, protocol & wanted);
            Assert.Equal(0UL, protocol & VhostUserProtocolFeatures.LogShmfd);
            fe.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version, protocol);
            fe.Send(VhostUserRequestType.GetQueueNum, TestFrontEnd.Version, default);
            Assert.Equal(1UL, fe.ExpectU64(VhostUserRequestType.GetQueueNum));
            fe.Send(VhostUserRequestType.GetMaxMemSlots, TestFrontEnd.Version, default);
            Assert.True(fe.ExpectU64(VhostUserRequestType.GetMaxMemSlots) >= 8);
            fe.Send(VhostUserRequestType.SetBackendReqFd, TestFrontEnd.NeedReply, default, backend);
            fe.ExpectAck(VhostUserRequestType.SetBackendReqFd);
            fe.Send(VhostUserRequestType.SetOwner, TestFrontEnd.NeedReply, default);
            fe.ExpectAck(VhostUserRequestType.SetOwner);
            fe.Send(VhostUserRequestType.GetFeatures, TestFrontEnd.Version, default);
            Assert.Equal(features, fe.ExpectU64(VhostUserRequestType.GetFeatures));
            fe.SendU64(VhostUserRequestType.SetVringCall, TestFrontEnd.NeedReply, 0, call1);
            fe.ExpectAck(VhostUserRequestType.SetVringCall);
            fe.SendU64(VhostUserRequestType.SetVringErr, TestFrontEnd.NeedReply, 0, err);
            fe.ExpectAck(VhostUserRequestType.SetVringErr);

            // GET_CONFIG many times while the guest probes: identical answers.
            byte[] configRequest = new byte[12 + 6];
            new ConfigHeader(0, 6, 0).Write(configRequest);
            for (int i = 0; i < 45; i++)
            {
                fe.Send(VhostUserRequestType.GetConfig, TestFrontEnd.Version, configRequest);
                byte[] reply = fe.ExpectReply(VhostUserRequestType.GetConfig);
                Assert.Equal(18, reply.Length);
                Assert.Equal(new ConfigHeader(0, 6, 0), ConfigHeader.Read(reply));
                Assert.Equal(device.Config.ToArray(), reply[12..]);
            }

            // Driver start: SET_FEATURES, memory (ADD_MEM_REG), vring setup, enable.
            ulong acked = expected;
            fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.NeedReply, acked);
            fe.ExpectAck(VhostUserRequestType.SetFeatures);
            var memReg = new byte[40];
            ram.Description.Write(memReg.AsSpan(8));
            fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
            fe.ExpectAck(VhostUserRequestType.AddMemReg);

            MockDriver driver = MockDriver.Create(ram, 256);
            fe.SendState(VhostUserRequestType.SetVringNum, TestFrontEnd.NeedReply, 0, 256);
            fe.ExpectAck(VhostUserRequestType.SetVringNum);
            fe.SendState(VhostUserRequestType.SetVringBase, TestFrontEnd.NeedReply, 0, 0);
            fe.ExpectAck(VhostUserRequestType.SetVringBase);
            var addr = new byte[40];
            driver.Address().Write(addr);
            fe.Send(VhostUserRequestType.SetVringAddr, TestFrontEnd.NeedReply, addr);
            fe.ExpectAck(VhostUserRequestType.SetVringAddr);
            fe.SendU64(VhostUserRequestType.SetVringKick, TestFrontEnd.NeedReply, 0, kick);
            fe.ExpectAck(VhostUserRequestType.SetVringKick);
            fe.SendU64(VhostUserRequestType.SetVringCall, TestFrontEnd.NeedReply, 0, call2); // switch call fd
            fe.ExpectAck(VhostUserRequestType.SetVringCall);
            // A running ring's new call fd is signalled once (libvhost-user does the same): consume it.
            Assert.True(TestFrontEnd.WaitSignalled(call2, 2000), "no signal on the replacement call fd");
            fe.SendState(VhostUserRequestType.SetVringEnable, TestFrontEnd.NeedReply, 0, 1);
            fe.ExpectAck(VhostUserRequestType.SetVringEnable);

            // A request round trip through the echo device, with a chain split like 9P zero-copy (header + pages).
            ulong data = driver.DataGpa;
            Encoding.ASCII.GetBytes("hello, vhost").CopyTo(ram.Span(data, 12));
            ushort head = driver.AddChain((data, 12, false), (data + 0x1000, 5, true), (data + 0x2000, 100, true));
            driver.Publish(head);
            TestFrontEnd.Kick(kick);
            Assert.True(TestFrontEnd.WaitSignalled(call2), "no used-buffer notification on the new call fd");
            Assert.Equal(1, driver.UsedIdx);
            Assert.Equal((head, 12u), driver.Used(0));
            Assert.Equal("hello", Encoding.ASCII.GetString(ram.Span(data + 0x1000, 5)));
            Assert.Equal(", vhost", Encoding.ASCII.GetString(ram.Span(data + 0x2000, 7)));
            Assert.False(TestFrontEnd.WaitSignalled(call1, 50), "old call fd must not be used after the switch");

            // Several in flight at once, completed out of order on the thread pool.
            for (int i = 0; i < 20; i++)
            {
                ulong b = data + 0x3000 + (ulong)i * 0x100;
                driver.Publish(driver.AddChain((b, 4, false), (b + 0x80, 4, true)));
            }
            TestFrontEnd.Kick(kick);
            DateTime deadline = DateTime.UtcNow.AddSeconds(10);
            while (driver.UsedIdx != 21 && DateTime.UtcNow < deadline)
            {
                TestFrontEnd.WaitSignalled(call2, 100);
            }
            Assert.Equal(21, driver.UsedIdx);

            // Stop: SET_VRING_ENABLE 0, GET_VRING_BASE (next avail index), then close.
            fe.SendState(VhostUserRequestType.SetVringEnable, TestFrontEnd.NeedReply, 0, 0);
            fe.ExpectAck(VhostUserRequestType.SetVringEnable);
            fe.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            byte[] vb = fe.ExpectReply(VhostUserRequestType.GetVringBase);
            Assert.Equal(new VringState(0, 21), VringState.Read(vb));
            Assert.True(device.Stopped >= 1);

            fe.Dispose();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.False(File.Exists(SocketPath));
        }
        finally
        {
            fe.Dispose();
            cts.Cancel();
            foreach (int fd in new[] { call1, err, kick, call2, backend })
            {
                close(fd);
            }
        }
    }

    [Fact]
    public async Task MemTableAndIndirectWithEventIdx()
    {
        var device = new EchoDevice();
        (Task run, TestFrontEnd fe, CancellationTokenSource cts) = Start(device);
        using var ram = new GuestRam(1 << 20, 0x4000_0000, UserAddr);
        int call = TestFrontEnd.NewEventFd(), kick = TestFrontEnd.NewEventFd();
        try
        {
            Negotiate(fe);
            fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.Version, 1 | VirtioFeatures.Version1
                | VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx | VirtioFeatures.VhostUserProtocolFeatures);
            var table = new byte[8 + 32];
            BinaryPrimitives.WriteUInt32LittleEndian(table, 1);
            ram.Description.Write(table.AsSpan(8));
            fe.Send(VhostUserRequestType.SetMemTable, TestFrontEnd.NeedReply, table, ram.Fd);
            fe.ExpectAck(VhostUserRequestType.SetMemTable);
            MockDriver driver = MockDriver.Create(ram, 64);
            fe.SendState(VhostUserRequestType.SetVringNum, TestFrontEnd.Version, 0, 64);
            fe.SendState(VhostUserRequestType.SetVringBase, TestFrontEnd.Version, 0, 0);
            var addr = new byte[40];
            driver.Address().Write(addr);
            fe.Send(VhostUserRequestType.SetVringAddr, TestFrontEnd.Version, addr);
            fe.SendU64(VhostUserRequestType.SetVringCall, TestFrontEnd.Version, 0, call);
            fe.SendU64(VhostUserRequestType.SetVringKick, TestFrontEnd.Version, 0, kick);
            fe.SendState(VhostUserRequestType.SetVringEnable, TestFrontEnd.NeedReply, 0, 1);
            fe.ExpectAck(VhostUserRequestType.SetVringEnable);

            ulong data = driver.DataGpa;
            Encoding.ASCII.GetBytes("indirect").CopyTo(ram.Span(data, 8));
            driver.Publish(driver.AddIndirect(data + 0x10000, (data, 8, false), (data + 0x100, 8, true)));
            TestFrontEnd.Kick(kick);
            Assert.True(TestFrontEnd.WaitSignalled(call));
            Assert.Equal("indirect", Encoding.ASCII.GetString(ram.Span(data + 0x100, 8)));
            Assert.Equal(1, driver.AvailEvent); // EVENT_IDX: the backend asked for the next kick

            // A broken chain marks the queue broken; GET_STATUS then reports NEEDS_RESET; no crash.
            driver.Publish(driver.AddChain((0xdead_0000_0000, 8, false)));
            TestFrontEnd.Kick(kick);
            DateTime deadline = DateTime.UtcNow.AddSeconds(5);
            ulong status = 0;
            while (DateTime.UtcNow < deadline)
            {
                fe.Send(VhostUserRequestType.GetStatus, TestFrontEnd.Version, default);
                status = fe.ExpectU64(VhostUserRequestType.GetStatus);
                if ((status & 0x40) != 0)
                {
                    break;
                }
                Thread.Sleep(10);
            }
            Assert.Equal(0x40UL, status & 0x40);
            Assert.True(_logger.Contains(LogLevel.Error, "DescriptorAddressInvalid"));

            fe.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            Assert.Equal(new VringState(0, 1), VringState.Read(fe.ExpectReply(VhostUserRequestType.GetVringBase)));
            fe.Dispose();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            fe.Dispose();
            cts.Cancel();
            close(call);
            close(kick);
        }
    }

    [Fact]
    public async Task UnsupportedRequestsFailPolitely()
    {
        (Task run, TestFrontEnd fe, CancellationTokenSource cts) = Start(new EchoDevice());
        try
        {
            Negotiate(fe);
            var setConfig = new byte[12 + 2];
            new ConfigHeader(0, 2, 0).Write(setConfig);
            fe.Send(VhostUserRequestType.SetConfig, TestFrontEnd.NeedReply, setConfig);
            Assert.NotEqual(0UL, fe.ExpectU64(VhostUserRequestType.SetConfig));
            fe.Send((VhostUserRequestType)999, TestFrontEnd.NeedReply, new byte[16]);
            Assert.NotEqual(0UL, fe.ExpectU64((VhostUserRequestType)999));
            int fd = TestFrontEnd.NewEventFd();
            fe.SendU64(VhostUserRequestType.SetLogBase, TestFrontEnd.NeedReply, 0, fd);
            close(fd);
            Assert.NotEqual(0UL, fe.ExpectU64(VhostUserRequestType.SetLogBase));
            fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.NeedReply, 1UL << 50); // never offered
            Assert.NotEqual(0UL, fe.ExpectU64(VhostUserRequestType.SetFeatures));
            // Still alive.
            fe.Send(VhostUserRequestType.GetQueueNum, TestFrontEnd.Version, default);
            Assert.Equal(1UL, fe.ExpectU64(VhostUserRequestType.GetQueueNum));
            fe.Dispose();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            fe.Dispose();
            cts.Cancel();
        }
    }

    public static IEnumerable<object[]> HostileMessages()
    {
        static byte[] Msg(uint request, uint flags, uint size, byte[]? payload = null)
        {
            var b = new byte[12 + (payload?.Length ?? 0)];
            new MessageHeader(request, flags, size).Write(b);
            payload?.CopyTo(b, 12);
            return b;
        }
        yield return new object[] { "oversized", Msg(1, 1, 1_000_000), false };
        yield return new object[] { "bad version", Msg(1, 2, 0), false };
        yield return new object[] { "reply flag", Msg(1, 5, 0), false };
        yield return new object[] { "unknown flag", Msg(1, 0x11, 0), false };
        yield return new object[] { "fd on GET_FEATURES", Msg(1, 1, 0), true };
        yield return new object[] { "wrong size SET_FEATURES", Msg(2, 1, 4, new byte[4]), false };
        yield return new object[] { "vring num 3", Msg(8, 1, 8, new byte[] { 0, 0, 0, 0, 3, 0, 0, 0 }), false };
        yield return new object[] { "vring num 2048", Msg(8, 1, 8, new byte[] { 0, 0, 0, 0, 0, 8, 0, 0 }), false };
        yield return new object[] { "vring index 5", Msg(8, 1, 8, new byte[] { 5, 0, 0, 0, 4, 0, 0, 0 }), false };
        yield return new object[] { "misaligned vring addr", Msg(9, 1, 40, new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0 }.Concat(new byte[24]).ToArray()), false };
        yield return new object[] { "ADD_MEM_REG without fd", Msg(37, 1, 40, new byte[40]), false };
        yield return new object[] { "GET_CONFIG size 300", Msg(24, 1, 12, new byte[] { 0, 0, 0, 0, 44, 1, 0, 0, 0, 0, 0, 0 }), false };
        yield return new object[] { "truncated header", new byte[] { 1, 0, 0 }, false };
    }

    [Theory]
    [MemberData(nameof(HostileMessages))]
    public async Task HostileMessageClosesConnection(string name, byte[] message, bool withFd)
    {
        (Task run, TestFrontEnd fe, CancellationTokenSource cts) = Start(new EchoDevice());
        int fd = TestFrontEnd.NewEventFd();
        try
        {
            fe.Send(VhostUserRequestType.GetFeatures, TestFrontEnd.Version, default);
            fe.ExpectU64(VhostUserRequestType.GetFeatures);
            int before = OpenFdCount();
            if (withFd)
            {
                fe.SendRaw(message, fd);
            }
            else
            {
                fe.SendRaw(message);
            }
            if (name == "truncated header")
            {
                fe.Dispose(); // EOF mid-header
            }
            else
            {
                Assert.True(fe.WaitClosed(), $"{name}: connection stayed open");
            }
            await run.WaitAsync(TimeSpan.FromSeconds(10)); // completes, no exception
            Assert.True(OpenFdCount() < before + 1, $"{name}: fds leaked");
        }
        finally
        {
            fe.Dispose();
            cts.Cancel();
            close(fd);
        }
    }

    [Fact]
    public async Task TooManyFdsClosesConnectionWithoutLeak()
    {
        (Task run, TestFrontEnd fe, CancellationTokenSource cts) = Start(new EchoDevice());
        int[] fds = Enumerable.Range(0, 12).Select(_ => TestFrontEnd.NewEventFd()).ToArray();
        try
        {
            int before = OpenFdCount();
            var table = new byte[8 + 32];
            BinaryPrimitives.WriteUInt32LittleEndian(table, 1);
            fe.Send(VhostUserRequestType.SetMemTable, TestFrontEnd.Version, table, fds);
            Assert.True(fe.WaitClosed());
            await run.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(OpenFdCount() < before + 1, "fds leaked");
            Assert.True(_logger.Contains(LogLevel.Warning, "ControlDataTruncated"));
        }
        finally
        {
            fe.Dispose();
            cts.Cancel();
            Array.ForEach(fds, fd => close(fd));
        }
    }

    [Fact]
    public async Task MemTableFdCountMismatchClosesConnection()
    {
        (Task run, TestFrontEnd fe, CancellationTokenSource cts) = Start(new EchoDevice());
        using var a = new GuestRam(1 << 16, 0, UserAddr);
        try
        {
            var table = new byte[8 + 64];
            BinaryPrimitives.WriteUInt32LittleEndian(table, 2);
            a.Description.Write(table.AsSpan(8));
            new MemoryRegionDescription(1 << 16, 1 << 16, UserAddr + (1 << 16), 0).Write(table.AsSpan(40));
            fe.Send(VhostUserRequestType.SetMemTable, TestFrontEnd.NeedReply, table, a.Fd);
            Assert.True(fe.WaitClosed());
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            fe.Dispose();
            cts.Cancel();
        }
    }

    [Fact]
    public async Task RegionPastEndOfFileClosesConnection()
    {
        (Task run, TestFrontEnd fe, CancellationTokenSource cts) = Start(new EchoDevice());
        using var ram = new GuestRam(1 << 20, 0, UserAddr, fileSize: 4096);
        try
        {
            Negotiate(fe);
            var memReg = new byte[40];
            ram.Description.Write(memReg.AsSpan(8));
            fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
            Assert.True(fe.WaitClosed());
            await run.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(_logger.Contains(LogLevel.Warning, "InvalidMemoryRegion"));
        }
        finally
        {
            fe.Dispose();
            cts.Cancel();
        }
    }

    [Fact]
    public async Task OverlappingRegionClosesConnection()
    {
        (Task run, TestFrontEnd fe, CancellationTokenSource cts) = Start(new EchoDevice());
        using var ram = new GuestRam(1 << 20, 0, UserAddr);
        try
        {
            Negotiate(fe);
            var memReg = new byte[40];
            ram.Description.Write(memReg.AsSpan(8));
            fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
            fe.ExpectAck(VhostUserRequestType.AddMemReg);
            fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, ram.Fd);
            Assert.True(fe.WaitClosed());
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            fe.Dispose();
            cts.Cancel();
        }
    }

    [Fact]
    public async Task CancellationStopsServerAndRemovesSocket()
    {
        var server = new VhostUserServer(SocketPath, new EchoDevice(), _logger);
        File.WriteAllText(SocketPath, "stale");
        using var cts = new CancellationTokenSource();
        Task run = server.RunAsync(cts.Token);
        DateTime deadline = DateTime.UtcNow.AddSeconds(5);
        while (new FileInfo(SocketPath).Length != 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(10); // the stale file is replaced by the socket
        }
        cts.Cancel();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(File.Exists(SocketPath));
    }

    private static int OpenFdCount() => Directory.GetFiles("/proc/self/fd").Length;
}

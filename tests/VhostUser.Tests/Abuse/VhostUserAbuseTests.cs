using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Tmds.Linux;
using Xunit.Abstractions;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests.Abuse;

/// <summary>
/// A hostile front-end's vhost-user messages against the real server. Checks sit where rust-vmm's
/// backend_req_handler puts them (size, fd count, payload validity before the handler) and, unlike
/// libvhost-user's asserts, never abort: a violation closes the connection and every fd that came with it;
/// a request we merely do not support gets a REPLY_ACK failure and the connection lives on. After every
/// case the same device serves the next front-end.
/// </summary>
public sealed class VhostUserAbuseTests : IDisposable
{
    private const uint V = TestFrontEnd.Version;
    private const uint NeedReply = TestFrontEnd.NeedReply;
    private readonly ListLogger _logger = new();
    private readonly ITestOutputHelper _output;
    private readonly EchoDevice _device = new();
    private readonly List<int> _fds = new();

    public VhostUserAbuseTests(ITestOutputHelper output) => _output = output;

    public void Dispose()
    {
        _fds.ForEach(fd => close(fd));
        foreach (var e in _logger.Entries)
        {
            _output.WriteLine($"{e.Level}: {e.Message}");
        }
    }

    private static byte[] Message(VhostUserRequestType type, uint flags, byte[] payload, uint? sizeField = null)
    {
        var b = new byte[12 + payload.Length];
        new MessageHeader((uint)type, flags, sizeField ?? (uint)payload.Length).Write(b);
        payload.CopyTo(b, 12);
        return b;
    }

    private static byte[] U64(ulong v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        return b;
    }

    private static byte[] State(uint index, uint num)
    {
        var b = new byte[8];
        new VringState(index, num).Write(b);
        return b;
    }

    private static byte[] MemTable(params MemoryRegionDescription[] regions) => MemTable((uint)regions.Length, regions);

    private static byte[] MemTable(uint count, params MemoryRegionDescription[] regions)
    {
        var b = new byte[8 + 32 * regions.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(b, count);
        for (int i = 0; i < regions.Length; i++)
        {
            regions[i].Write(b.AsSpan(8 + 32 * i));
        }
        return b;
    }

    private static byte[] MemReg(MemoryRegionDescription d)
    {
        var b = new byte[40];
        d.Write(b.AsSpan(8));
        return b;
    }

    private const ulong U = EmulatedQemu.UserAddr;
    private static readonly MemoryRegionDescription Region64K = new(0, 0x1_0000, U, 0);

    /// <summary>Fds of the kinds a test attaches: memfds are 64 KiB (Region64K fits), eventfds, pipe read ends.</summary>
    private int NewFd(string kind)
    {
        int fd;
        switch (kind)
        {
            case "eventfd":
                fd = TestFrontEnd.NewEventFd();
                break;
            case "memfd":
                unsafe
                {
                    byte* name = stackalloc byte[] { (byte)'m', 0 };
                    fd = memfd_create(name, MFD_CLOEXEC);
                }
                Assert.Equal(0, ftruncate(fd, 0x1_0000));
                break;
            case "pipe":
                unsafe
                {
                    int* p = stackalloc int[2];
                    Assert.Equal(0, pipe2(p, O_CLOEXEC));
                    fd = p[0];
                    close(p[1]); // a read end at EOF: always "readable"
                }
                break;
            case "socket":
                unsafe
                {
                    int* p = stackalloc int[2];
                    Assert.Equal(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p));
                    fd = p[0];
                    close(p[1]); // peer gone: always "readable" (EOF)
                }
                break;
            case "epoll":
                unsafe
                {
                    // An epoll fd watching an eventfd that is always readable: an anonymous inode like an eventfd,
                    // readable forever, and read() on it fails, so a drain never quiets it.
                    fd = epoll_create1(EPOLL_CLOEXEC);
                    int ready = NewFd("eventfd");
                    TestFrontEnd.Kick(ready);
                    epoll_event ev = default;
                    ev.events = EPOLLIN;
                    Assert.Equal(0, epoll_ctl(fd, EPOLL_CTL_ADD, ready, &ev));
                }
                break;
            default:
                throw new ArgumentException(kind);
        }
        Assert.True(fd >= 0);
        _fds.Add(fd);
        return fd;
    }

    public static TheoryData<string, byte[], string[]> ViolatingMessages() => new()
    {
        // wrong sizes
        { "GET_FEATURES with a payload", Message(VhostUserRequestType.GetFeatures, V, new byte[8]), [] },
        { "SET_OWNER with a payload", Message(VhostUserRequestType.SetOwner, V, new byte[4]), [] },
        { "SET_VRING_ADDR of 39 bytes", Message(VhostUserRequestType.SetVringAddr, V, new byte[39]), [] },
        { "GET_VRING_BASE of 4 bytes", Message(VhostUserRequestType.GetVringBase, V, new byte[4]), [] },
        { "SET_VRING_KICK of 4 bytes", Message(VhostUserRequestType.SetVringKick, V, new byte[4]), ["eventfd"] },
        { "SET_MEM_TABLE of 8 + 31 bytes", Message(VhostUserRequestType.SetMemTable, V, new byte[39]), ["memfd"] },
        { "ADD_MEM_REG of 8 + 33 bytes", Message(VhostUserRequestType.AddMemReg, V, new byte[41]), ["memfd"] },
        { "size field above 4 KiB", Message(VhostUserRequestType.GetConfig, V, [], 4097), [] },
        { "size field 2^32 - 1", Message(VhostUserRequestType.GetConfig, V, [], uint.MaxValue), [] },
        // missing fds
        { "SET_VRING_KICK without fd or NOFD flag", Message(VhostUserRequestType.SetVringKick, NeedReply, U64(0)), [] },
        { "SET_VRING_CALL without fd or NOFD flag", Message(VhostUserRequestType.SetVringCall, NeedReply, U64(0)), [] },
        { "SET_VRING_ERR without fd or NOFD flag", Message(VhostUserRequestType.SetVringErr, NeedReply, U64(0)), [] },
        { "SET_BACKEND_REQ_FD without fd", Message(VhostUserRequestType.SetBackendReqFd, NeedReply, []), [] },
        { "ADD_MEM_REG without fd", Message(VhostUserRequestType.AddMemReg, NeedReply, MemReg(Region64K)), [] },
        { "SET_MEM_TABLE with 2 regions, 1 fd", Message(VhostUserRequestType.SetMemTable, NeedReply,
            MemTable(Region64K, new(0x1_0000, 0x1_0000, U + 0x1_0000, 0))), ["memfd"] },
        // extra fds
        { "SET_VRING_NUM with an fd", Message(VhostUserRequestType.SetVringNum, NeedReply, State(0, 64)), ["eventfd"] },
        { "SET_VRING_KICK with NOFD flag and an fd", Message(VhostUserRequestType.SetVringKick, NeedReply, U64(0x100)), ["eventfd"] },
        { "SET_VRING_CALL with 2 fds", Message(VhostUserRequestType.SetVringCall, NeedReply, U64(0)), ["eventfd", "eventfd"] },
        { "ADD_MEM_REG with 2 fds", Message(VhostUserRequestType.AddMemReg, NeedReply, MemReg(Region64K)), ["memfd", "memfd"] },
        { "SET_MEM_TABLE with 1 region, 2 fds", Message(VhostUserRequestType.SetMemTable, NeedReply, MemTable(Region64K)), ["memfd", "memfd"] },
        { "GET_FEATURES with an fd", Message(VhostUserRequestType.GetFeatures, V, []), ["eventfd"] },
        // regions
        { "zero-sized region (ADD_MEM_REG)", Message(VhostUserRequestType.AddMemReg, NeedReply, MemReg(new(0, 0, U, 0))), ["memfd"] },
        { "zero-sized region (SET_MEM_TABLE)", Message(VhostUserRequestType.SetMemTable, NeedReply, MemTable(new MemoryRegionDescription(0, 0, U, 0))), ["memfd"] },
        { "regions overlapping in guest addresses", Message(VhostUserRequestType.SetMemTable, NeedReply,
            MemTable(Region64K, new(0x8000, 0x1_0000, U + 0x10_0000, 0))), ["memfd", "memfd"] },
        { "regions overlapping in front-end addresses", Message(VhostUserRequestType.SetMemTable, NeedReply,
            MemTable(Region64K, new(0x10_0000, 0x1_0000, U + 0x8000, 0))), ["memfd", "memfd"] },
        { "more regions than announced", Message(VhostUserRequestType.SetMemTable, NeedReply,
            MemTable(1, Region64K, new(0x10_0000, 0x1_0000, U + 0x10_0000, 0))), ["memfd", "memfd"] },
        { "fewer regions than announced", Message(VhostUserRequestType.SetMemTable, NeedReply, MemTable(2, Region64K)), ["memfd"] },
        { "9 regions", Message(VhostUserRequestType.SetMemTable, NeedReply, MemTable(9, Enumerable.Range(0, 9)
            .Select(i => new MemoryRegionDescription((ulong)i << 20, 0x1_0000, U + ((ulong)i << 20), 0)).ToArray())), ["memfd"] },
        { "region past the end of its file", Message(VhostUserRequestType.AddMemReg, NeedReply, MemReg(new(0, 0x2_0000, U, 0))), ["memfd"] },
        { "mmap offset past the end of its file", Message(VhostUserRequestType.AddMemReg, NeedReply, MemReg(new(0, 0x1000, U, 0x1_0000))), ["memfd"] },
        { "region end wrapping 2^64", Message(VhostUserRequestType.AddMemReg, NeedReply, MemReg(new(ulong.MaxValue - 0xfff, 0x1_0000, U, 0))), ["memfd"] },
        { "eventfd as a memory region", Message(VhostUserRequestType.AddMemReg, NeedReply, MemReg(Region64K)), ["eventfd"] },
        // ring sizes and indexes
        { "SET_VRING_NUM 0", Message(VhostUserRequestType.SetVringNum, NeedReply, State(0, 0)), [] },
        { "SET_VRING_NUM 32768", Message(VhostUserRequestType.SetVringNum, NeedReply, State(0, 32768)), [] },
        { "SET_VRING_NUM 32769", Message(VhostUserRequestType.SetVringNum, NeedReply, State(0, 32769)), [] },
        { "SET_VRING_NUM 2^32 - 1", Message(VhostUserRequestType.SetVringNum, NeedReply, State(0, uint.MaxValue)), [] },
        { "SET_VRING_BASE 65536", Message(VhostUserRequestType.SetVringBase, NeedReply, State(0, 65536)), [] },
        { "SET_VRING_ENABLE 2", Message(VhostUserRequestType.SetVringEnable, NeedReply, State(0, 2)), [] },
        { "vring index 1 of 1", Message(VhostUserRequestType.GetVringBase, V, State(1, 0)), [] },
        { "SET_VRING_KICK index 200", Message(VhostUserRequestType.SetVringKick, NeedReply, U64(200)), ["eventfd"] },
        { "SET_VRING_CALL with unknown payload bits", Message(VhostUserRequestType.SetVringCall, NeedReply, U64(0x1_0000)), ["eventfd"] },
        { "SET_VRING_ADDR with the log flag", Message(VhostUserRequestType.SetVringAddr, NeedReply,
            [1, 0, 0, 0, 1, 0, 0, 0, .. new byte[32]]), [] },
        // notification fds that are not eventfds
        { "pipe as kick fd", Message(VhostUserRequestType.SetVringKick, NeedReply, U64(0)), ["pipe"] },
        { "socket as kick fd", Message(VhostUserRequestType.SetVringKick, NeedReply, U64(0)), ["socket"] },
        { "memfd as kick fd", Message(VhostUserRequestType.SetVringKick, NeedReply, U64(0)), ["memfd"] },
        { "epoll fd as kick fd", Message(VhostUserRequestType.SetVringKick, NeedReply, U64(0)), ["epoll"] },
        { "pipe as call fd", Message(VhostUserRequestType.SetVringCall, NeedReply, U64(0)), ["pipe"] },
        { "memfd as err fd", Message(VhostUserRequestType.SetVringErr, NeedReply, U64(0)), ["memfd"] },
    };

    [Theory]
    [MemberData(nameof(ViolatingMessages))]
    public async Task Violation_closes_the_connection_releases_its_fds_and_the_next_front_end_is_served(string name, byte[] message, string[] fdKinds)
    {
        using EmulatedQemu qemu = EmulatedQemu.Connect(_device, _logger);
        qemu.FrontEnd.Negotiate();
        int[] fds = fdKinds.Select(NewFd).ToArray();
        int before = EmulatedQemu.OpenFdCount();
        qemu.FrontEnd.SendRaw(message, fds);
        Assert.True(qemu.FrontEnd.WaitClosed(), $"{name}: connection stayed open");
        Assert.True(_logger.Contains(LogLevel.Warning, "closing connection"), $"{name}: no log line says why");
        await qemu.DisconnectAsync();
        Assert.True(EmulatedQemu.WaitOpenFdCountAtMost(before), $"{name}: fds leaked");

        qemu.Reconnect();
        EchoRoundTrip(qemu);
    }

    /// <summary>One request through a started ring, echoed back.</summary>
    private static void EchoRoundTrip(EmulatedQemu qemu)
    {
        ulong d = qemu.DataGpa;
        qemu.Ram.Span(d, 4).Fill(0x11);
        int used = qemu.Driver.UsedIdx;
        ushort head = qemu.Driver.AddChain((d, 4, false), (d + 0x100, 4, true));
        qemu.Submit(head);
        Assert.True(qemu.WaitUsed(used + 1));
        Assert.Equal(0x11, qemu.Ram.Span(d + 0x100, 4)[3]);
    }

    [Fact]
    public void Unknown_requests_are_refused_with_their_fds_closed_and_the_connection_lives()
    {
        using EmulatedQemu qemu = EmulatedQemu.Start(_device, _logger);
        int[] fds = [NewFd("eventfd"), NewFd("memfd")];
        int before = EmulatedQemu.OpenFdCount();
        foreach (uint request in new uint[] { 0, 26, 41, 999, uint.MaxValue })
        {
            qemu.FrontEnd.Send((VhostUserRequestType)request, NeedReply, new byte[64], fds);
            Assert.Equal(1UL, qemu.FrontEnd.ExpectU64((VhostUserRequestType)request));
        }
        Assert.True(EmulatedQemu.WaitOpenFdCountAtMost(before), "fds of unknown requests leaked");
        EchoRoundTrip(qemu);
    }

    [Fact]
    public void Many_large_unknown_requests_keep_memory_bounded()
    {
        using EmulatedQemu qemu = EmulatedQemu.Start(_device, _logger);
        EchoRoundTrip(qemu);
        GC.Collect();
        long before = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < 2000; i++)
        {
            qemu.FrontEnd.Send((VhostUserRequestType)999, NeedReply, new byte[4096]);
            Assert.Equal(1UL, qemu.FrontEnd.ExpectU64((VhostUserRequestType)999));
        }
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(after - before < 4 << 20, $"heap grew by {after - before} bytes over 8 MiB of requests");
        EchoRoundTrip(qemu);
    }

    [Fact]
    public async Task Socket_closed_mid_message_ends_cleanly_without_leaking_its_fd()
    {
        using EmulatedQemu qemu = EmulatedQemu.Connect(_device, _logger);
        qemu.FrontEnd.Negotiate();
        int memfd = NewFd("memfd");
        int before = EmulatedQemu.OpenFdCount();
        byte[] whole = Message(VhostUserRequestType.AddMemReg, NeedReply, MemReg(Region64K));
        qemu.FrontEnd.SendRaw(whole.AsSpan(0, 20), memfd); // header and 8 of 40 payload bytes, then gone
        await qemu.DisconnectAsync();
        Assert.True(EmulatedQemu.WaitOpenFdCountAtMost(before), "the fd of the half message leaked");
        qemu.Reconnect();
        EchoRoundTrip(qemu);
    }

    [Fact]
    public void Kick_before_memory_and_addresses_is_harmless_and_the_ring_starts_later()
    {
        using EmulatedQemu qemu = EmulatedQemu.Connect(_device, _logger);
        TestFrontEnd fe = qemu.FrontEnd;
        fe.Negotiate();
        Assert.Equal(0u, fe.GetVringBase()); // GET_VRING_BASE of a ring never started
        fe.SendU64(VhostUserRequestType.SetVringKick, NeedReply, 0, qemu.Kick);
        fe.ExpectAck(VhostUserRequestType.SetVringKick);
        fe.SendState(VhostUserRequestType.SetVringEnable, NeedReply, 0, 1);
        fe.ExpectAck(VhostUserRequestType.SetVringEnable);
        TestFrontEnd.Kick(qemu.Kick);
        DateTime deadline = DateTime.UtcNow.AddSeconds(5);
        while (!_logger.Contains(LogLevel.Warning, "kicked before SET_VRING_NUM/SET_VRING_ADDR") && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(10);
        }
        Assert.True(_logger.Contains(LogLevel.Warning, "kicked before SET_VRING_NUM/SET_VRING_ADDR"));
        Assert.Equal(0UL, fe.GetStatus() & EmulatedQemu.NeedsReset);

        // Now the proper order: memory, then the ring from scratch.
        Assert.Equal(0u, fe.GetVringBase());
        using var ram = new GuestRam(1 << 20, 0, EmulatedQemu.UserAddr);
        Assert.Equal(0UL, fe.AddMemReg(ram.Description, ram.Fd));
        MockDriver driver = MockDriver.Create(ram, 64);
        fe.StartVring(driver, qemu.Kick, qemu.Call);
        ulong d = driver.DataGpa;
        ram.Span(d, 4).Fill(0x22);
        driver.Publish(driver.AddChain((d, 4, false), (d + 0x100, 4, true)));
        TestFrontEnd.Kick(qemu.Kick);
        Assert.True(TestFrontEnd.WaitSignalled(qemu.Call));
        Assert.Equal(1, driver.UsedIdx);
        Assert.Equal(0x22, ram.Span(d + 0x100, 4)[0]);
    }

    [Fact]
    public void Vring_addresses_outside_guest_memory_break_the_ring_at_the_first_kick()
    {
        using EmulatedQemu qemu = EmulatedQemu.Connect(_device, _logger);
        TestFrontEnd fe = qemu.FrontEnd;
        fe.Negotiate();
        using var ram = new GuestRam(1 << 20, 0, EmulatedQemu.UserAddr);
        ram.Span(0, 1 << 20).Fill(EmulatedQemu.Sentinel);
        Assert.Equal(0UL, fe.AddMemReg(ram.Description, ram.Fd));
        fe.SendU64(VhostUserRequestType.SetVringErr, NeedReply, 0, qemu.Err);
        fe.ExpectAck(VhostUserRequestType.SetVringErr);
        // The used ring sits 16 bytes before the end of the region: its 6 + 8 * 64 bytes run out of it.
        var unmapped = new MockDriver(ram, 64, 0, 0x1000, (1 << 20) - 16);
        fe.StartVring(unmapped, qemu.Kick, qemu.Call);
        TestFrontEnd.Kick(qemu.Kick);
        DateTime deadline = DateTime.UtcNow.AddSeconds(5);
        while ((fe.GetStatus() & EmulatedQemu.NeedsReset) == 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(10);
        }
        Assert.NotEqual(0UL, fe.GetStatus() & EmulatedQemu.NeedsReset);
        Assert.True(TestFrontEnd.WaitSignalled(qemu.Err));
        Assert.True(_logger.Contains(LogLevel.Error, nameof(QueueError.RingAddressInvalid)));
        Assert.All(ram.Span(0, 1 << 20).ToArray(), b => Assert.Equal(EmulatedQemu.Sentinel, b));
        // Addresses cannot change under a running ring.
        var addr = new byte[VringAddress.Length];
        MockDriver.Create(ram, 64).Address().Write(addr);
        fe.Send(VhostUserRequestType.SetVringAddr, NeedReply, addr);
        Assert.Equal(1UL, fe.ExpectU64(VhostUserRequestType.SetVringAddr));
    }

    [Fact]
    public void Region_holding_the_ring_removed_under_it_breaks_the_ring_without_touching_memory()
    {
        using EmulatedQemu qemu = EmulatedQemu.Start(_device, _logger);
        EchoRoundTrip(qemu);
        var rem = new byte[40];
        qemu.Ram.Description.Write(rem.AsSpan(8));
        qemu.FrontEnd.Send(VhostUserRequestType.RemMemReg, NeedReply, rem);
        qemu.FrontEnd.ExpectAck(VhostUserRequestType.RemMemReg);
        ulong d = qemu.DataGpa;
        qemu.Submit(qemu.Driver.AddChain((d, 4, false), (d + 0x100, 4, true)));
        Assert.True(qemu.RingBroken());
        Assert.Equal(1, qemu.Driver.UsedIdx);
    }

    [Fact]
    public void More_memory_slots_than_offered_closes_the_connection()
    {
        using EmulatedQemu qemu = EmulatedQemu.Connect(_device, _logger);
        qemu.FrontEnd.Negotiate();
        qemu.FrontEnd.Send(VhostUserRequestType.GetMaxMemSlots, V, default);
        ulong slots = qemu.FrontEnd.ExpectU64(VhostUserRequestType.GetMaxMemSlots);
        var rams = new List<GuestRam>();
        try
        {
            for (ulong i = 0; i < slots; i++)
            {
                var ram = new GuestRam(0x1000, i << 20, U + (i << 20));
                rams.Add(ram);
                Assert.Equal(0UL, qemu.FrontEnd.AddMemReg(ram.Description, ram.Fd));
            }
            var extra = new GuestRam(0x1000, slots << 20, U + (slots << 20));
            rams.Add(extra);
            var payload = new byte[40];
            extra.Description.Write(payload.AsSpan(8));
            qemu.FrontEnd.Send(VhostUserRequestType.AddMemReg, NeedReply, payload, extra.Fd);
            Assert.True(qemu.FrontEnd.WaitClosed());
            Assert.True(_logger.Contains(LogLevel.Warning, "slots"));
        }
        finally
        {
            rams.ForEach(r => r.Dispose());
        }
    }
}

using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace VirtFs.VhostUser.Tests.Abuse;

/// <summary>
/// A hostile driver's descriptor chains, through the real server, real vhost-user messages and a real split ring in
/// memfd RAM. Each broken rule must mark the ring broken (GET_STATUS NEEDS_RESET, err eventfd signalled, as
/// libvhost-user's vu_panic and rust-vmm's virtio-queue errors do), complete nothing, leave every guest byte
/// outside the request untouched (sentinel), not count the chain in GET_VRING_BASE, and leave the device ready for
/// the next front-end.
/// </summary>
public sealed class DescriptorAbuseTests : IDisposable
{
    private const ushort QueueSize = 16;
    private const byte RequestByte = 0x11;
    private readonly ListLogger _logger = new();
    private readonly ITestOutputHelper _output;
    private readonly EmulatedQemu _qemu;

    public DescriptorAbuseTests(ITestOutputHelper output)
    {
        _output = output;
        _qemu = EmulatedQemu.Start(new EchoDevice(), _logger, QueueSize);
    }

    public void Dispose()
    {
        _qemu.Dispose();
        foreach (var e in _logger.Entries)
        {
            _output.WriteLine($"{e.Level}: {e.Message}");
        }
    }

    private ulong D => _qemu.DataGpa;
    private MockDriver Driver => _qemu.Driver;

    /// <summary>Puts request bytes (not the sentinel) at [gpa, gpa+length) so an echo is visible.</summary>
    private void Request(ulong gpa, int length) => _qemu.Ram.Span(gpa, length).Fill(RequestByte);

    public static TheoryData<string, QueueError?> BrokenChains() => new()
    {
        { "address outside every region", QueueError.DescriptorAddressInvalid },
        { "writable buffer running from RAM into a hole", QueueError.DescriptorAddressInvalid },
        { "length running past the end of guest memory", QueueError.DescriptorAddressInvalid },
        { "address near 2^64 (would wrap)", QueueError.DescriptorAddressInvalid },
        { "two descriptors of 4 GiB - 1", QueueError.ChainTooLarge },
        { "loop in the descriptor table", QueueError.ChainTooLong },
        { "self loop in an indirect table", QueueError.ChainTooLong },
        { "indirect table larger than the queue limit", QueueError.IndirectBadLength },
        { "nested indirect table", QueueError.IndirectNested },
        { "indirect table of 17 bytes", QueueError.IndirectBadLength },
        { "indirect table of 0 bytes", QueueError.IndirectBadLength },
        { "indirect table with NEXT", QueueError.IndirectWithNext },
        { "indirect table outside memory", QueueError.IndirectAddressInvalid },
        { "readable after writable", QueueError.ReadableAfterWritable },
        { "head out of range", QueueError.HeadOutOfRange },
        { "next out of range", QueueError.NextOutOfRange },
        { "avail index a queue and one ahead", QueueError.AvailIndexTooFarAhead },
    };

    [Theory]
    [MemberData(nameof(BrokenChains))]
    public async Task Broken_chain_breaks_the_ring_and_writes_nothing(string name, QueueError? expected)
    {
        Request(D, 64);
        ulong reply = D + 0x1000;
        switch (name)
        {
            case "address outside every region":
                _qemu.Submit(Driver.AddChain((D, 16, false), (0x4000_0000, 16, true)));
                break;
            case "writable buffer running from RAM into a hole":
                _qemu.AddRegion(0x20_0000, 0x1_0000);
                _qemu.Submit(Driver.AddChain((D, 16, false), (_qemu.Ram.Size - 8, 16, true)));
                break;
            case "length running past the end of guest memory":
                _qemu.Submit(Driver.AddChain((D, 16, false), (reply, 0x10_0000, true)));
                break;
            case "address near 2^64 (would wrap)":
                _qemu.Submit(Driver.AddChain((D, 16, false), (0xFFFF_FFFF_FFFF_FFF0, 0x100, true)));
                break;
            case "two descriptors of 4 GiB - 1":
                _qemu.Submit(Driver.AddChain((D, 0xFFFF_FFFF, false), (reply, 0xFFFF_FFFF, true)));
                break;
            case "loop in the descriptor table":
                Driver.WriteDescriptor(Driver.DescGpa, 0, D, 16, SplitRing.DescFlagNext, 1);
                Driver.WriteDescriptor(Driver.DescGpa, 1, reply, 16, SplitRing.DescFlagNext | SplitRing.DescFlagWrite, 1);
                _qemu.Submit(0);
                break;
            case "self loop in an indirect table":
            {
                ulong table = D + 0x2000;
                ushort head = Driver.AddIndirect(table, (D, 16, false), (reply, 16, true));
                Driver.WriteDescriptor(table, 1, reply, 16, SplitRing.DescFlagNext | SplitRing.DescFlagWrite, 1);
                _qemu.Submit(head);
                break;
            }
            case "indirect table larger than the queue limit":
                Driver.WriteDescriptor(Driver.DescGpa, 0, D + 0x2000, 16 * (SplitRing.MaxIndirectDescriptors + 1), SplitRing.DescFlagIndirect, 0);
                _qemu.Submit(0);
                break;
            case "nested indirect table":
            {
                ulong table = D + 0x2000;
                ushort head = Driver.AddIndirect(table, (D, 16, false), (reply, 16, true));
                Driver.WriteDescriptor(table, 1, D + 0x3000, 16, SplitRing.DescFlagIndirect, 0);
                _qemu.Submit(head);
                break;
            }
            case "indirect table of 17 bytes":
                Driver.WriteDescriptor(Driver.DescGpa, 0, D + 0x2000, 17, SplitRing.DescFlagIndirect, 0);
                _qemu.Submit(0);
                break;
            case "indirect table of 0 bytes":
                Driver.WriteDescriptor(Driver.DescGpa, 0, D + 0x2000, 0, SplitRing.DescFlagIndirect, 0);
                _qemu.Submit(0);
                break;
            case "indirect table with NEXT":
                Driver.WriteDescriptor(Driver.DescGpa, 0, D + 0x2000, 32, SplitRing.DescFlagIndirect | SplitRing.DescFlagNext, 1);
                _qemu.Submit(0);
                break;
            case "indirect table outside memory":
                Driver.WriteDescriptor(Driver.DescGpa, 0, 0x4000_0000, 32, SplitRing.DescFlagIndirect, 0);
                _qemu.Submit(0);
                break;
            case "readable after writable":
                _qemu.Submit(Driver.AddChain((reply, 16, true), (D, 16, false)));
                break;
            case "head out of range":
                _qemu.Submit(QueueSize);
                break;
            case "next out of range":
                Driver.WriteDescriptor(Driver.DescGpa, 0, D, 16, SplitRing.DescFlagNext, QueueSize);
                _qemu.Submit(0);
                break;
            case "avail index a queue and one ahead":
                Driver.AddChain((D, 16, false), (reply, 16, true));
                Driver.SetAvailIdx(QueueSize + 1);
                TestFrontEnd.Kick(_qemu.Kick);
                break;
            default:
                throw new ArgumentException(name);
        }

        Assert.True(_qemu.RingBroken(), $"{name}: ring not reported broken");
        Assert.Equal(0, Driver.UsedIdx);
        _qemu.AssertDataUntouched((D, 64), (D + 0x2000, 0x2000)); // the request and the tables the test wrote
        Assert.All(_qemu.Ram.Span(D, 64).ToArray(), b => Assert.Equal(RequestByte, b)); // readable bytes untouched
        string expectedText = expected?.ToString() ?? "driver broke the virtqueue rules";
        Assert.True(_logger.Contains(LogLevel.Error, expectedText), $"{name}: no log line naming {expectedText}");
        Assert.Equal(0u, _qemu.FrontEnd.GetVringBase()); // the bad chain was not consumed

        await _qemu.DisconnectAsync();
        _qemu.Reconnect();
        EchoRoundTrip();
    }

    /// <summary>One healthy request through the ring: "ping" echoed into a writable buffer.</summary>
    private void EchoRoundTrip()
    {
        _qemu.Ram.Span(D, 4).Fill(RequestByte);
        ushort head = Driver.AddChain((D, 4, false), (D + 0x100, 4, true));
        _qemu.Submit(head);
        Assert.True(_qemu.WaitUsed(1));
        Assert.Equal((head, 4u), Driver.Used(0));
        Assert.All(_qemu.Ram.Span(D + 0x100, 4).ToArray(), b => Assert.Equal(RequestByte, b));
        Assert.Equal(0UL, _qemu.FrontEnd.GetStatus() & EmulatedQemu.NeedsReset);
    }

    [Fact]
    public void Buffers_spanning_two_adjacent_regions_are_served()
    {
        _qemu.AddRegion(_qemu.Ram.Size, 0x1_0000); // gpa directly after the first region
        ulong across = _qemu.Ram.Size - 8;
        Request(across - 0x100, 16);
        ushort head = Driver.AddChain((across - 0x100, 16, false), (across, 16, true));
        _qemu.Submit(head);
        Assert.True(_qemu.WaitUsed(1));
        Assert.Equal((head, 16u), Driver.Used(0));
        _qemu.AssertDataUntouched((across - 0x100, 16), (across, 16));
        Assert.Equal(RequestByte, _qemu.Ram.Span(across + 7, 1)[0]);
    }

    [Fact]
    public void Readable_only_chain_gets_a_used_length_of_zero_and_no_write()
    {
        Request(D, 16);
        ushort head = Driver.AddChain((D, 16, false));
        _qemu.Submit(head);
        Assert.True(_qemu.WaitUsed(1));
        Assert.Equal((head, 0u), Driver.Used(0));
        _qemu.AssertDataUntouched((D, 16));
        Assert.Equal(0UL, _qemu.FrontEnd.GetStatus() & EmulatedQemu.NeedsReset);
    }

    [Fact]
    public void Writable_only_chain_gets_a_used_length_of_zero_and_no_write()
    {
        ushort head = Driver.AddChain((D, 16, true));
        _qemu.Submit(head);
        Assert.True(_qemu.WaitUsed(1));
        Assert.Equal((head, 0u), Driver.Used(0));
        _qemu.AssertDataUntouched();
    }

    [Fact]
    public void A_full_ring_is_served_and_one_more_than_it_holds_is_refused()
    {
        for (int i = 0; i < QueueSize; i++)
        {
            ulong b = D + (ulong)i * 0x100;
            Request(b, 8);
            Driver.Publish(Driver.AddChain((b, 8, false), (b + 0x80, 8, true)));
        }
        TestFrontEnd.Kick(_qemu.Kick);
        Assert.True(_qemu.WaitUsed(QueueSize));
        // The driver now claims QueueSize + 1 new heads: more than the ring can hold.
        Driver.SetAvailIdx((ushort)(QueueSize + QueueSize + 1));
        TestFrontEnd.Kick(_qemu.Kick);
        Assert.True(_qemu.RingBroken());
        Assert.Equal(QueueSize, Driver.UsedIdx);
        Assert.Equal((uint)QueueSize, _qemu.FrontEnd.GetVringBase());
    }

    /// <summary>
    /// Guest RAM truncated under the mapping would make our next access SIGBUS. What we do about it: a region
    /// whose file is smaller than offset + size is refused at map time (VhostUserAbuseTests: "region past the end
    /// of its file"), and whether the file is sealed against shrinking is logged; a later truncation of an
    /// unsealed file by the front-end ends the process (see MappedRegion.SealedAgainstShrinking).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Regions_are_checked_for_size_and_shrink_seals_at_map_time(bool sealSize)
    {
        using EmulatedQemu other = EmulatedQemu.Connect(new EchoDevice(), _logger);
        other.FrontEnd.Negotiate();
        using var ram = new GuestRam(1 << 20, 0, EmulatedQemu.UserAddr, sealSize: sealSize);
        Assert.Equal(0UL, other.FrontEnd.AddMemReg(ram.Description, ram.Fd));
        Assert.True(_logger.Contains(LogLevel.Information, sealSize ? ", sealed against shrinking" : "not sealed against shrinking"));
        if (sealSize)
        {
            // Sealed: nobody, the front-end included, can take the pages away under our mapping.
            Assert.NotEqual(0, Tmds.Linux.LibC.ftruncate(ram.Fd, 4096));
        }
        // The region serves a ring either way.
        MockDriver driver = MockDriver.Create(ram, 16);
        other.FrontEnd.StartVring(driver, other.Kick, other.Call);
        ulong d = driver.DataGpa;
        ram.Span(d, 4).Fill(RequestByte);
        driver.Publish(driver.AddChain((d, 4, false), (d + 0x100, 4, true)));
        TestFrontEnd.Kick(other.Kick);
        Assert.True(TestFrontEnd.WaitSignalled(other.Call));
        Assert.Equal(RequestByte, ram.Span(d + 0x100, 4)[0]);
        await other.DisconnectAsync();
    }
}

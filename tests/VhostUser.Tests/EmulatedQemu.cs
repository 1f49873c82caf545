using Microsoft.Extensions.Logging;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests;

/// <summary>
/// Plays QEMU end to end for the abuse suites: a real <see cref="VhostUserServer"/> on a scratch socket, a
/// <see cref="TestFrontEnd"/> speaking real vhost-user messages, memfd guest RAM, kick/call/err eventfds and one
/// started split ring laid out by a <see cref="MockDriver"/>. Everything in RAM from <see cref="DataGpa"/> on is
/// filled with <see cref="Sentinel"/>, so a test can prove the backend wrote nothing but what it was allowed to.
/// </summary>
internal sealed class EmulatedQemu : IDisposable
{
    public const ulong UserAddr = 0x7f20_0000_0000;
    public const byte Sentinel = 0xA5;
    /// <summary>DEVICE_NEEDS_RESET in GET_STATUS: a ring broke.</summary>
    public const ulong NeedsReset = 0x40;

    private readonly string _dir;
    private readonly IVirtioDevice _device;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _cts = new();
    private readonly List<GuestRam> _rams = new();

    private EmulatedQemu(IVirtioDevice device, ILogger logger)
    {
        _device = device;
        _logger = logger;
        _dir = Directory.CreateTempSubdirectory("emulated-qemu").FullName;
        Kick = TestFrontEnd.NewEventFd();
        Call = TestFrontEnd.NewEventFd();
        Err = TestFrontEnd.NewEventFd();
        Run = new VhostUserServer(SocketPath, device, logger).RunAsync(_cts.Token);
        FrontEnd = TestFrontEnd.Connect(SocketPath);
    }

    public string SocketPath => Path.Combine(_dir, "vhost.sock");
    public Task Run { get; private set; }
    public TestFrontEnd FrontEnd { get; private set; }
    public GuestRam Ram => _rams[0];
    public MockDriver Driver { get; private set; } = null!;
    public int Kick { get; }
    public int Call { get; }
    public int Err { get; }
    public ulong DataGpa => Driver.DataGpa;
    public ulong DataEnd => Ram.GuestPhysAddr + Ram.Size;

    /// <summary>A connected front-end that has sent nothing yet (for message-level abuse).</summary>
    public static EmulatedQemu Connect(IVirtioDevice device, ILogger logger) => new(device, logger);

    /// <summary>Connects, negotiates, adds one memfd region and starts ring 0 (err fd set, enabled).</summary>
    public static EmulatedQemu Start(IVirtioDevice device, ILogger logger, ushort queueSize = 64, ulong ramSize = 1 << 20,
        ulong features = VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc | VirtioFeatures.VhostUserProtocolFeatures | 1)
    {
        var q = new EmulatedQemu(device, logger);
        try
        {
            q.StartRing(queueSize, ramSize, features);
            return q;
        }
        catch (Exception e)
        {
            // Seen once (2026-12-05, not reproduced): the server closed a fresh connection at its first message.
            // What the server logged and how its task ended say why; without them the failure says nothing.
            string server = q.Run.IsFaulted ? $"server task failed: {q.Run.Exception}" : $"server task {q.Run.Status}";
            string log = logger is ListLogger list
                ? string.Join(" | ", list.Entries.Select(x => $"{x.Level}: {x.Message}"))
                : "(not a ListLogger)";
            q.Dispose();
            throw new Xunit.Sdk.XunitException($"starting the ring failed: {e.Message}; {server}; server log: {log}");
        }
    }

    private unsafe void StartRing(ushort queueSize, ulong ramSize, ulong features)
    {
        FrontEnd.Negotiate(features);
        var ram = new GuestRam(ramSize, 0, UserAddr);
        _rams.Add(ram);
        Assert.Equal(0UL, FrontEnd.AddMemReg(ram.Description, ram.Fd));
        Driver = MockDriver.Create(ram, queueSize);
        new Span<byte>(ram.At(DataGpa), (int)(DataEnd - DataGpa)).Fill(Sentinel);
        FrontEnd.SendU64(VhostUserRequestType.SetVringErr, TestFrontEnd.NeedReply, 0, Err);
        FrontEnd.ExpectAck(VhostUserRequestType.SetVringErr);
        FrontEnd.StartVring(Driver, Kick, Call);
    }

    /// <summary>Adds a second memfd region (e.g. to make buffers span regions) and returns it.</summary>
    public GuestRam AddRegion(ulong gpa, ulong size)
    {
        var ram = new GuestRam(size, gpa, UserAddr + gpa);
        _rams.Add(ram);
        Assert.Equal(0UL, FrontEnd.AddMemReg(ram.Description, ram.Fd));
        ram.Span(gpa, (int)size).Fill(Sentinel);
        return ram;
    }

    /// <summary>Publishes a head and kicks.</summary>
    public void Submit(ushort head)
    {
        Driver.Publish(head);
        TestFrontEnd.Kick(Kick);
    }

    /// <summary>Waits until the used index reaches <paramref name="count"/>; false on timeout.</summary>
    public bool WaitUsed(int count, int timeoutMs = 10000)
    {
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (Driver.UsedIdx != (ushort)count)
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            TestFrontEnd.WaitSignalled(Call, 20);
        }
        return true;
    }

    /// <summary>True once GET_STATUS reports NEEDS_RESET and the err eventfd was signalled.</summary>
    public bool RingBroken(int timeoutMs = 5000)
    {
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while ((FrontEnd.GetStatus() & NeedsReset) == 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            Thread.Sleep(10);
        }
        return TestFrontEnd.WaitSignalled(Err, timeoutMs);
    }

    /// <summary>Asserts every byte of [from, to) that is outside <paramref name="allowed"/> still holds the sentinel.</summary>
    public void AssertUntouched(ulong from, ulong to, params (ulong Gpa, ulong Length)[] allowed)
    {
        var holes = allowed.Where(r => r.Length > 0).OrderBy(r => r.Gpa).ToArray();
        foreach (GuestRam ram in _rams)
        {
            ulong start = Math.Max(from, ram.GuestPhysAddr), end = Math.Min(to, ram.GuestPhysAddr + ram.Size);
            ulong at = start;
            foreach ((ulong gpa, ulong length) in holes.Append((end, 0UL)))
            {
                ulong stop = Math.Min(Math.Max(gpa, at), end);
                if (stop > at)
                {
                    int bad = ram.Span(at, (int)(stop - at)).IndexOfAnyExcept(Sentinel);
                    if (bad >= 0)
                    {
                        throw new Xunit.Sdk.XunitException($"guest memory at 0x{at + (ulong)bad:x} changed outside the writable buffers");
                    }
                }
                at = Math.Max(at, Math.Min(gpa + length, end));
            }
        }
    }

    /// <summary>Asserts the whole data area (every region) outside <paramref name="allowed"/> still holds the sentinel.</summary>
    public void AssertDataUntouched(params (ulong Gpa, ulong Length)[] allowed) => AssertUntouched(DataGpa, ulong.MaxValue, allowed);

    /// <summary>Fills the data area of every region with the sentinel again.</summary>
    public void ResetData()
    {
        foreach (GuestRam ram in _rams)
        {
            ulong start = Math.Max(DataGpa, ram.GuestPhysAddr);
            ram.Span(start, (int)(ram.GuestPhysAddr + ram.Size - start)).Fill(Sentinel);
        }
    }

    /// <summary>Closes the front-end's socket; the server must finish cleanly (no exception) and remove its socket.</summary>
    public async Task DisconnectAsync()
    {
        FrontEnd.Dispose();
        await Run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(File.Exists(SocketPath), "socket file left behind");
    }

    /// <summary>
    /// After <see cref="DisconnectAsync"/>: a new server over the SAME device takes the next front-end, which
    /// negotiates, maps fresh RAM and starts a ring from scratch. Proves the device and process are still usable.
    /// </summary>
    public void Reconnect(ushort queueSize = 64)
    {
        FrontEnd.Dispose();
        _rams.ForEach(r => r.Dispose());
        _rams.Clear();
        Run = new VhostUserServer(SocketPath, _device, _logger).RunAsync(_cts.Token);
        FrontEnd = TestFrontEnd.Connect(SocketPath);
        StartRing(queueSize, 1 << 20, VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc | VirtioFeatures.VhostUserProtocolFeatures | 1);
    }

    public void Dispose()
    {
        FrontEnd.Dispose();
        _cts.Cancel();
        try
        {
            Run.Wait(TimeSpan.FromSeconds(10));
        }
        catch (AggregateException)
        {
            // the test already asserted what it needed; cleanup must go on
        }
        close(Kick);
        close(Call);
        close(Err);
        _rams.ForEach(r => r.Dispose());
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Open fds of this process (for leak checks).</summary>
    public static int OpenFdCount() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>True once at most <paramref name="count"/> fds are open (the server closes received fds after it replies).</summary>
    public static bool WaitOpenFdCountAtMost(int count, int timeoutMs = 3000)
    {
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (OpenFdCount() > count)
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            Thread.Sleep(10);
        }
        return true;
    }
}

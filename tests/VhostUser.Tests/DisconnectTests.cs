using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests;

/// <summary>
/// Issue 13, "When QEMU goes away": the front-end vanishes (QEMU killed) while requests are in flight. Its guest
/// memory must not be written afterwards (it may belong to someone else by then), its memory and fds must be
/// released without waiting for slow requests, and with keep-listening the next front-end gets a fresh device.
/// </summary>
public sealed class DisconnectTests : IDisposable
{
    private const ulong UserAddr = 0x7f35_0000_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("vhost-gone").FullName;
    private readonly ListLogger _logger = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>True when <paramref name="task"/> ends within <paramref name="limit"/>; its exception, if any, is thrown.</summary>
    private static async Task<bool> EndsWithin(Task task, TimeSpan limit)
    {
        if (await Task.WhenAny(task, Task.Delay(limit)) != task)
        {
            return false;
        }
        await task;
        return true;
    }

    /// <summary>Parks every request until <see cref="Release"/> is set, then answers it the two ways a device can
    /// write guest memory: a copy into the reply, and a pread from a file straight into the reply's iovecs.</summary>
    private sealed class StallingDevice(string dataFile) : IVirtioDevice, IDisposable
    {
        public ManualResetEventSlim Release { get; } = new();
        public int Received;
        public int LateCopies = -1;        // bytes the last late copy reported
        public int DirectAccessGranted;    // late direct accesses that were let in
        public int Finished;
        public bool Disposed;

        public ulong DeviceFeatures => 0;
        public int QueueCount => 1;
        public ReadOnlyMemory<byte> Config => new byte[2];

        public void HandleRequest(DescriptorChain request)
        {
            Interlocked.Increment(ref Received);
            new Thread(() => Answer(request)) { IsBackground = true }.Start();
        }

        private unsafe void Answer(DescriptorChain request)
        {
            Release.Wait();
            Volatile.Write(ref LateCopies, request.CopyToWritable(0, "LATE"u8));
            if (request.TryBeginDirectAccess())
            {
                Interlocked.Increment(ref DirectAccessGranted);
                try
                {
                    Span<iovec> iov = stackalloc iovec[4];
                    int count = request.GetWritableIovecs(0, request.WritableLength, iov);
                    using FileStream file = File.OpenRead(dataFile);
                    for (int i = 0; i < count; i++)
                    {
                        // SAFETY: the iovec comes from the request inside its direct access window.
                        pread((int)file.SafeFileHandle.DangerousGetHandle(), iov[i].iov_base, iov[i].iov_len, 0);
                    }
                }
                finally
                {
                    request.EndDirectAccess();
                }
            }
            request.Complete(0);
            Interlocked.Increment(ref Finished);
        }

        public void Dispose() => Disposed = true;
    }

    [Fact]
    public async Task FrontEndKilledMidRequestLeavesItsMemoryAloneAndTheNextFrontEndStartsFresh()
    {
        string dataFile = Path.Combine(_dir, "data");
        File.WriteAllBytes(dataFile, Enumerable.Repeat((byte)'X', 256).ToArray());
        var devices = new List<StallingDevice>();
        string path = Path.Combine(_dir, "gone.sock");
        using var cts = new CancellationTokenSource();
        var server = new VhostUserServer(path, () =>
        {
            var d = new StallingDevice(dataFile);
            lock (devices)
            {
                devices.Add(d);
            }
            return d;
        }, _logger, keepListening: true);
        Task run = server.RunAsync(cts.Token);
        string name = $"sentinel-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40];
        using var ram = new GuestRam(1 << 20, 0, UserAddr, name: name);
        int kick = TestFrontEnd.NewEventFd(), call = TestFrontEnd.NewEventFd();
        StallingDevice first;
        try
        {
            var fe = TestFrontEnd.Connect(path);
            MockDriver driver = ServerStopTests.SetUpMemory(fe, ram);
            fe.StartVring(driver, kick, call);
            for (int i = 0; i < 3; i++)
            {
                driver.Publish(driver.AddChain((driver.DataGpa + (ulong)i * 0x100, 64, true)));
            }
            TestFrontEnd.Kick(kick);
            Assert.True(FdCensus.Eventually(() => devices.Count == 1 && Volatile.Read(ref devices[0].Received) == 3));
            first = devices[0];
            // The backend holds the memfd mapped and a copy of each eventfd.
            Assert.Equal(2, FdCensus.MemfdMappings(name));
            Assert.Equal(2, FdCensus.SameEventFd(kick));
            Assert.Equal(2, FdCensus.SameEventFd(call));
            TestFrontEnd.WaitSignalled(call, 0); // SET_VRING_CALL on a running ring signals once
            byte[] before = ram.Span(0, (int)ram.Size).ToArray();

            // QEMU is killed: its end of the socket closes without GET_VRING_BASE.
            fe.Dispose();
            // With keep-listening the socket comes back once the old connection is torn down, and that did not
            // wait for the three stalled requests.
            Assert.True(FdCensus.Eventually(() => File.Exists(path)), "not listening again");
            Assert.Equal(0, Volatile.Read(ref first.Finished));
            Assert.True(first.Disposed);
            Assert.Equal(1, FdCensus.MemfdMappings(name)); // only the test's own mapping is left
            Assert.Equal(1, FdCensus.MemfdFds(name));
            Assert.Equal(1, FdCensus.SameEventFd(kick));
            Assert.Equal(1, FdCensus.SameEventFd(call));
            Assert.False(TestFrontEnd.WaitSignalled(call, 0));

            // The stalled requests now come back and try to answer: nothing reaches the old guest's memory.
            first.Release.Set();
            Assert.True(FdCensus.Eventually(() => Volatile.Read(ref first.Finished) == 3));
            Assert.Equal(0, Volatile.Read(ref first.LateCopies));
            Assert.Equal(0, Volatile.Read(ref first.DirectAccessGranted));
            Assert.True(before.AsSpan().SequenceEqual(ram.Span(0, (int)ram.Size)), "guest memory written after the front-end left");
            Assert.Equal(0, driver.UsedIdx);
            Assert.False(TestFrontEnd.WaitSignalled(call, 0));

            // The next front-end: a new device, and it is served normally.
            using var ram2 = new GuestRam(1 << 20, 0, UserAddr, name: name + "b");
            using TestFrontEnd fe2 = TestFrontEnd.Connect(path);
            MockDriver driver2 = ServerStopTests.SetUpMemory(fe2, ram2);
            fe2.StartVring(driver2, kick, call);
            driver2.Publish(driver2.AddChain((driver2.DataGpa, 64, true)));
            TestFrontEnd.Kick(kick);
            Assert.True(FdCensus.Eventually(() => devices.Count == 2 && Volatile.Read(ref devices[1].Received) == 1));
            StallingDevice second = devices[1];
            Assert.NotSame(first, second);
            second.Release.Set();
            Assert.True(FdCensus.Eventually(() => driver2.UsedIdx == 1));
            Assert.Equal(1, Volatile.Read(ref second.DirectAccessGranted));
            Assert.Equal("XXXX", Encoding.ASCII.GetString(ram2.Span(driver2.DataGpa, 4)));
            fe2.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            Assert.Equal(new VringState(0, 1), VringState.Read(fe2.ExpectReply(VhostUserRequestType.GetVringBase)));
            Assert.Equal(2, server.FrontEndsServed);
        }
        finally
        {
            cts.Cancel();
            lock (devices)
            {
                devices.ForEach(d => d.Release.Set());
            }
            close(kick);
            close(call);
        }
        Assert.True(await EndsWithin(run, TimeSpan.FromSeconds(10)));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task WithoutKeepListeningTheServerReturnsAfterTheFrontEndLeavesEvenWithRequestsStuck()
    {
        string dataFile = Path.Combine(_dir, "data1");
        File.WriteAllBytes(dataFile, new byte[64]);
        var device = new StallingDevice(dataFile);
        string path = Path.Combine(_dir, "once.sock");
        var server = new VhostUserServer(path, () => device, _logger, keepListening: false);
        Task run = server.RunAsync(CancellationToken.None);
        string name = $"once-{Guid.NewGuid():N}"[..30];
        using var ram = new GuestRam(1 << 20, 0, UserAddr, name: name);
        int kick = TestFrontEnd.NewEventFd(), call = TestFrontEnd.NewEventFd();
        try
        {
            var fe = TestFrontEnd.Connect(path);
            MockDriver driver = ServerStopTests.SetUpMemory(fe, ram);
            fe.StartVring(driver, kick, call);
            driver.Publish(driver.AddChain((driver.DataGpa, 64, true)));
            TestFrontEnd.Kick(kick);
            Assert.True(FdCensus.Eventually(() => Volatile.Read(ref device.Received) == 1));
            fe.Dispose();
            Assert.True(await EndsWithin(run, TimeSpan.FromSeconds(10)), "server still waiting for a stuck request");
            Assert.True(device.Disposed);
            Assert.False(File.Exists(path));
            Assert.Equal(1, FdCensus.MemfdMappings(name));
            Assert.True(_logger.Contains(Microsoft.Extensions.Logging.LogLevel.Information, "1 requests were in flight"));
        }
        finally
        {
            device.Release.Set();
            close(kick);
            close(call);
        }
        Assert.True(FdCensus.Eventually(() => Volatile.Read(ref device.Finished) == 1));
        Assert.Equal(0, device.LateCopies);
    }
}

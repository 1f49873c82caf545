using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using VirtFs.ProxyFs;
using VirtFs.VhostUser;
using VirtFs.VhostUser.Tests;
using VirtFs.Virtio9p.Device;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Server;
using static Tmds.Linux.LibC;

namespace VirtFs.DeviceBench;

/// <summary>
/// The production request path in this process: <see cref="VhostUserServer"/> + <see cref="Virtio9pDevice"/> +
/// <see cref="P9Server"/> over a <see cref="LocalFileSystem"/> or, with a helper binary, the real
/// virtfs-proxy-helper behind <see cref="ProxyFileSystem"/>; set up through a unix socket by the component
/// tests' <see cref="TestFrontEnd"/> exactly as QEMU 11.1 does, with a memfd as guest RAM.
/// </summary>
internal sealed class BenchBackend : IDisposable
{
    private const ulong UserAddr = 0x7f12_0000_0000;
    public const ushort QueueSize = 1024;

    private readonly string _dir;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _run;
    private readonly TestFrontEnd _frontEnd;
    private readonly Virtio9pDevice _device;
    private readonly Process? _helper;
    private readonly ProxyClientPool? _pool;
    private readonly LocalFileSystem? _local;
    private readonly int _call, _kick;

    public BenchBackend(string dir, string export, string? helperPath, int workers, int maxDepth, bool serveInline)
    {
        _dir = dir;
        IFileSystem fs;
        if (helperPath is not null)
        {
            string socket = Path.Combine(dir, serveInline ? "helper-inline.sock" : "helper-pool.sock");
            var psi = new ProcessStartInfo(helperPath) { UseShellExecute = false };
            foreach (string a in new[] { "-n", "-p", export, "-s", socket, "-u", "0", "-g", "0" })
            {
                psi.ArgumentList.Add(a);
            }
            _helper = Process.Start(psi)!;
            var clock = Stopwatch.StartNew();
            while (!File.Exists(socket))
            {
                if (_helper.HasExited || clock.Elapsed > TimeSpan.FromSeconds(30))
                {
                    throw new InvalidOperationException("the helper did not start");
                }
                Thread.Sleep(20);
            }
            Thread.Sleep(200); // the sandbox finishes after the socket appears
            _pool = new ProxyClientPool(() => ProxyClient.Connect(socket), 4);
            fs = new ProxyFileSystem(_pool, NullLogger.Instance);
        }
        else
        {
            _local = new LocalFileSystem(export);
            fs = _local;
        }
        var server = new P9Server(fs, NullLogger.Instance);
        _device = new Virtio9pDevice("bench", server, workers, NullLogger.Instance, serveInline: serveInline);
        string socketPath = Path.Combine(dir, serveInline ? "vhost-inline.sock" : "vhost-pool.sock");
        var vhost = new VhostUserServer(socketPath, _device, NullLogger.Instance);
        _run = vhost.RunAsync(_cts.Token);
        _frontEnd = TestFrontEnd.Connect(socketPath);

        Ram = new GuestRam(RingClient.RamSize(QueueSize, maxDepth), 0, UserAddr);
        _call = TestFrontEnd.NewEventFd();
        _kick = TestFrontEnd.NewEventFd();
        TestFrontEnd fe = _frontEnd;
        fe.Send(VhostUserRequestType.GetFeatures, TestFrontEnd.Version, default);
        fe.ExpectU64(VhostUserRequestType.GetFeatures);
        fe.Send(VhostUserRequestType.GetProtocolFeatures, TestFrontEnd.Version, default);
        fe.ExpectU64(VhostUserRequestType.GetProtocolFeatures);
        fe.SendU64(VhostUserRequestType.SetProtocolFeatures, TestFrontEnd.Version,
            VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config
            | VhostUserProtocolFeatures.ConfigureMemSlots);
        fe.SendU64(VhostUserRequestType.SetFeatures, TestFrontEnd.NeedReply, Virtio9pDevice.FeatureMountTag
            | VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc | VirtioFeatures.RingEventIdx
            | VirtioFeatures.VhostUserProtocolFeatures);
        fe.ExpectAck(VhostUserRequestType.SetFeatures);
        var memReg = new byte[40];
        Ram.Description.Write(memReg.AsSpan(8));
        fe.Send(VhostUserRequestType.AddMemReg, TestFrontEnd.NeedReply, memReg, Ram.Fd);
        fe.ExpectAck(VhostUserRequestType.AddMemReg);
        Driver = MockDriver.Create(Ram, QueueSize);
        fe.StartVring(Driver, _kick, _call);
        Client = new RingClient(Ram, Driver, _kick, _call, maxDepth);
    }

    public GuestRam Ram { get; }
    public MockDriver Driver { get; }
    public RingClient Client { get; }

    /// <summary>Tversion, Tattach (fid 0 = root), Twalk to <paramref name="file"/> (fid 1), Tlopen O_RDWR.</summary>
    public void OpenSession(string file, int msize)
    {
        byte[] name = Encoding.UTF8.GetBytes(file);
        var w = new MessageBuilder();
        Client.Call(0, w.Start(RingClient.Tversion, 0xffff).U32((uint)msize).Str("9P2000.L"u8).Finish(), "Tversion");
        Client.Call(0, w.Start(RingClient.Tattach, 0).U32(0).U32(uint.MaxValue).Str("root"u8).Str(""u8).U32(0).Finish(), "Tattach");
        Client.Call(0, w.Start(RingClient.Twalk, 0).U32(0).U32(1).U16(1).Str(name).Finish(), "Twalk");
        Client.Call(0, w.Start(RingClient.Tlopen, 0).U32(1).U32(2 /* O_RDWR */).Finish(), "Tlopen");
    }

    public void Dispose()
    {
        // Stop the ring as QEMU does, so the device's workers are idle when we tear down.
        try
        {
            _frontEnd.SendState(VhostUserRequestType.SetVringEnable, TestFrontEnd.NeedReply, 0, 0);
            _frontEnd.ExpectAck(VhostUserRequestType.SetVringEnable);
            _frontEnd.SendState(VhostUserRequestType.GetVringBase, TestFrontEnd.Version, 0, 0);
            _frontEnd.ExpectReply(VhostUserRequestType.GetVringBase);
        }
        finally
        {
            _frontEnd.Dispose();
            _cts.Cancel();
            try
            {
                _run.Wait(TimeSpan.FromSeconds(10));
            }
            catch (AggregateException)
            {
            }
            _device.Dispose();
            _pool?.Dispose();
            _local?.Dispose();
            if (_helper is { HasExited: false })
            {
                _helper.Kill();
                _helper.WaitForExit(5000);
            }
            close(_call);
            close(_kick);
            Ram.Dispose();
        }
    }
}

/// <summary>Builds one little-endian 9P message (set-up only; the measured loop writes guest RAM directly).</summary>
internal sealed class MessageBuilder
{
    private readonly List<byte> _bytes = new();

    public MessageBuilder Start(byte type, ushort tag)
    {
        _bytes.Clear();
        U32(0);
        _bytes.Add(type);
        return U16(tag);
    }

    public MessageBuilder U16(ushort v)
    {
        _bytes.Add((byte)v);
        _bytes.Add((byte)(v >> 8));
        return this;
    }

    public MessageBuilder U32(uint v) => U16((ushort)v).U16((ushort)(v >> 16));

    public MessageBuilder Str(ReadOnlySpan<byte> s)
    {
        U16((ushort)s.Length);
        foreach (byte b in s)
        {
            _bytes.Add(b);
        }
        return this;
    }

    public byte[] Finish()
    {
        byte[] message = _bytes.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        return message;
    }
}

using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using VirtFs.VhostUser.Diagnostics;

namespace VirtFs.VhostUser;

/// <summary>
/// One front-end connection: the message loop (header and body checked by <see cref="RequestRules"/> before
/// dispatch) and the vhost-user state it drives (features, memory table, queues). Runs on one thread.
/// </summary>
internal sealed class Connection : IDisposable
{
    /// <summary>virtio 1.2, 2.1: DEVICE_NEEDS_RESET, reported through GET_STATUS when a queue broke.</summary>
    private const byte StatusNeedsReset = 0x40;

    private readonly MessageChannel _channel;
    private readonly IVirtioDevice _device;
    private readonly ILogger _logger;
    private readonly MemoryTable _memory = new();
    private readonly Vring[] _queues;
    private readonly ulong _offeredFeatures;
    private readonly byte[] _payload = new byte[VhostUserLimits.MaxPayload];
    private readonly byte[] _reply = new byte[MessageHeader.Length + ConfigHeader.Length + VhostUserLimits.MaxConfigSize];

    private ulong _ackedFeatures;
    private ulong _ackedProtocolFeatures;
    private byte _status;
    private FdHandle? _backendReq;

    public Connection(MessageChannel channel, IVirtioDevice device, ILogger logger)
    {
        _channel = channel;
        _device = device;
        _logger = logger;
        _offeredFeatures = device.DeviceFeatures | VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc
            | VirtioFeatures.RingEventIdx | VirtioFeatures.VhostUserProtocolFeatures;
        _queues = new Vring[device.QueueCount];
        for (int i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new Vring(i, device, _memory, logger);
        }
    }

    private bool ReplyAckNegotiated => (_ackedProtocolFeatures & VhostUserProtocolFeatures.ReplyAck) != 0;

    /// <summary>Serves messages until the front-end disconnects, breaks the protocol, or the server stops.</summary>
    public void Run()
    {
        Span<byte> header = stackalloc byte[MessageHeader.Length];
        try
        {
            while (true)
            {
                using var fds = new ReceivedFds();
                try
                {
                    if (!_channel.ReceiveExactly(header, fds, eofAllowed: true))
                    {
                        return;
                    }
                    var h = MessageHeader.Read(header);
                    RequestRules.CheckHeader(h);
                    Span<byte> payload = _payload.AsSpan(0, (int)h.Size);
                    if (h.Size > 0 && !_channel.ReceiveExactly(payload, fds, eofAllowed: false))
                    {
                        return;
                    }
                    RequestRules.CheckBody(h, fds.Count);
                    SessionRecorder.Current?.Record(SessionRecorder.KindVhostUser, fds.Count, header, payload);
                    Dispatch(h, payload, fds);
                }
                catch (VhostUserProtocolException e)
                {
                    // Log once, here, where the decision to drop the front-end is made. `using` closes its fds.
                    _logger.LogWarning("vhost-user: closing connection: {Reason}", e.Message);
                    return;
                }
            }
        }
        finally
        {
            if (_channel.StopRequested)
            {
                // SIGTERM with the front-end still connected (issue 17): take no new requests, let those in flight
                // reach the used ring and the guest, bounded so a request stuck on the host cannot hold up the exit.
                foreach (Vring q in _queues)
                {
                    q.Drain(DrainTimeout);
                }
            }
            StopEverything();
        }
    }

    /// <summary>How long a stop (SIGTERM) waits for the requests in flight to be answered.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    private void Dispatch(in MessageHeader h, ReadOnlySpan<byte> p, ReceivedFds fds)
    {
        _logger.LogDebug("vhost-user: {Request} size {Size} flags 0x{Flags:x} fds {Fds}", h.Type, h.Size, h.Flags, fds.Count);
        ulong status = 0;
        switch (h.Type)
        {
            case VhostUserRequestType.GetFeatures:
                ReplyU64(h, _offeredFeatures);
                return;
            case VhostUserRequestType.SetFeatures:
                status = SetFeatures(BinaryPrimitives.ReadUInt64LittleEndian(p));
                break;
            case VhostUserRequestType.GetProtocolFeatures:
                ReplyU64(h, VhostUserProtocolFeatures.Supported);
                return;
            case VhostUserRequestType.SetProtocolFeatures:
                status = SetProtocolFeatures(BinaryPrimitives.ReadUInt64LittleEndian(p));
                break;
            case VhostUserRequestType.GetQueueNum:
                ReplyU64(h, (ulong)_queues.Length);
                return;
            case VhostUserRequestType.GetMaxMemSlots:
                ReplyU64(h, VhostUserLimits.MaxMemSlots);
                return;
            case VhostUserRequestType.SetOwner:
                break;
            case VhostUserRequestType.ResetOwner:
            case VhostUserRequestType.ResetDevice:
                ResetDevice();
                break;
            case VhostUserRequestType.SetBackendReqFd:
                // We send no backend requests; keep the fd so the front-end sees a live channel, close it at the end.
                _backendReq?.Dispose();
                _backendReq = fds.Take(0);
                break;
            case VhostUserRequestType.SetMemTable:
                SetMemTable(p, fds);
                break;
            case VhostUserRequestType.AddMemReg:
                status = AddMemReg(p, fds);
                break;
            case VhostUserRequestType.RemMemReg:
                status = RemMemReg(p);
                break;
            case VhostUserRequestType.SetVringNum:
                status = SetVringNum(VringState.Read(p));
                break;
            case VhostUserRequestType.SetVringBase:
                status = SetVringBase(VringState.Read(p));
                break;
            case VhostUserRequestType.SetVringAddr:
                status = SetVringAddr(VringAddress.Read(p));
                break;
            case VhostUserRequestType.GetVringBase:
                GetVringBase(h, VringState.Read(p));
                return;
            case VhostUserRequestType.SetVringKick:
            case VhostUserRequestType.SetVringCall:
            case VhostUserRequestType.SetVringErr:
                status = SetVringFd(h.Type, new VringFdPayload(BinaryPrimitives.ReadUInt64LittleEndian(p)), fds);
                break;
            case VhostUserRequestType.SetVringEnable:
                status = SetVringEnable(VringState.Read(p));
                break;
            case VhostUserRequestType.GetConfig:
                GetConfig(h, p);
                return;
            case VhostUserRequestType.SetConfig:
                if (!ConfigHeader.Read(p).IsValid(p.Length))
                {
                    throw new VhostUserProtocolException(VhostUserError.InvalidConfigRequest, "bad SET_CONFIG header");
                }
                _logger.LogInformation("vhost-user: SET_CONFIG refused (config space is read-only)");
                status = 1;
                break;
            case VhostUserRequestType.SetStatus:
                status = SetStatus(BinaryPrimitives.ReadUInt64LittleEndian(p));
                break;
            case VhostUserRequestType.GetStatus:
                ReplyU64(h, (ulong)(_status | (_queues.Any(q => q.IsBroken) ? StatusNeedsReset : 0)));
                return;
            default:
                // vhost-user.rst: a request we do not implement. Its fds are closed (by `using` in Run).
                _logger.LogInformation("vhost-user: unsupported request {Request}", h.Request);
                status = 1;
                break;
        }
        if (h.NeedReply && ReplyAckNegotiated)
        {
            // REPLY_ACK (vhost-user.rst, "REPLY_ACK"): 0 success, non-zero failure.
            ReplyU64(h, status);
        }
    }

    private ulong SetFeatures(ulong features)
    {
        if ((features & ~_offeredFeatures) != 0)
        {
            _logger.LogWarning("vhost-user: SET_FEATURES 0x{Features:x} has bits we never offered (0x{Offered:x})", features, _offeredFeatures);
            return 1;
        }
        _ackedFeatures = features;
        return 0;
    }

    private ulong SetProtocolFeatures(ulong features)
    {
        if ((features & ~VhostUserProtocolFeatures.Supported) != 0)
        {
            _logger.LogWarning("vhost-user: SET_PROTOCOL_FEATURES 0x{Features:x} has bits we never offered", features);
            return 1;
        }
        _ackedProtocolFeatures = features;
        return 0;
    }

    private ulong SetStatus(ulong status)
    {
        if (status > byte.MaxValue)
        {
            return 1;
        }
        // Only recorded: QEMU sends 0 on stop *before* GET_VRING_BASE, which must still report the ring position;
        // queue teardown follows from GET_VRING_BASE / RESET_DEVICE.
        _status = (byte)status;
        return 0;
    }

    private void SetMemTable(ReadOnlySpan<byte> p, ReceivedFds fds)
    {
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        if (count == 0 || count > VhostUserLimits.MaxMemTableRegions || p.Length != 8 + (int)count * MemoryRegionDescription.Length)
        {
            throw new VhostUserProtocolException(VhostUserError.TooManyRegions, $"SET_MEM_TABLE with {count} regions in {p.Length} bytes");
        }
        if (fds.Count != count)
        {
            throw new VhostUserProtocolException(VhostUserError.MissingFileDescriptor, $"SET_MEM_TABLE: {count} regions, {fds.Count} fds");
        }
        var descriptions = new MemoryRegionDescription[count];
        for (int i = 0; i < count; i++)
        {
            var d = MemoryRegionDescription.Read(p.Slice(8 + i * MemoryRegionDescription.Length));
            if (!d.IsValid())
            {
                throw new VhostUserProtocolException(VhostUserError.InvalidMemoryRegion, $"region {i} {d}");
            }
            for (int j = 0; j < i; j++)
            {
                if (MemoryTable.RangesOverlap(descriptions[j].GuestPhysAddr, descriptions[j].MemorySize, d.GuestPhysAddr, d.MemorySize)
                    || MemoryTable.RangesOverlap(descriptions[j].UserAddr, descriptions[j].MemorySize, d.UserAddr, d.MemorySize))
                {
                    throw new VhostUserProtocolException(VhostUserError.InvalidMemoryRegion, $"region {i} {d} overlaps region {j}");
                }
            }
            descriptions[i] = d;
        }
        var regions = new List<MappedRegion>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                using FdHandle fd = fds.Take(i);
                regions.Add(MappedRegion.Map(fd, descriptions[i]));
                LogRegion("mapped memory region", regions[i], descriptions[i]);
            }
        }
        catch
        {
            regions.ForEach(r => r.Dispose());
            throw;
        }
        _memory.ReplaceAll(regions);
        _logger.LogInformation("vhost-user: memory table with {Count} regions", count);
    }

    private ulong AddMemReg(ReadOnlySpan<byte> p, ReceivedFds fds)
    {
        var d = MemoryRegionDescription.Read(p.Slice(8));
        if (!d.IsValid() || _memory.Overlaps(d))
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidMemoryRegion, $"ADD_MEM_REG {d}");
        }
        if (_memory.RegionCount >= VhostUserLimits.MaxMemSlots)
        {
            throw new VhostUserProtocolException(VhostUserError.TooManyRegions, $"ADD_MEM_REG beyond {VhostUserLimits.MaxMemSlots} slots");
        }
        using FdHandle fd = fds.Take(0);
        MappedRegion region = MappedRegion.Map(fd, d);
        _memory.Add(region);
        LogRegion("added memory region", region, d);
        return 0;
    }

    /// <summary>Says whether the region is sealed against shrinking (see <see cref="MappedRegion.SealedAgainstShrinking"/>).</summary>
    private void LogRegion(string what, MappedRegion region, in MemoryRegionDescription d)
    {
        _logger.LogInformation("vhost-user: {What} {Region}, {Sealing}", what, d, region.SealedAgainstShrinking
            ? "sealed against shrinking"
            : "not sealed against shrinking (a front-end that truncates it would end this process with SIGBUS)");
    }

    private ulong RemMemReg(ReadOnlySpan<byte> p)
    {
        var d = MemoryRegionDescription.Read(p.Slice(8));
        if (!_memory.Remove(d))
        {
            _logger.LogWarning("vhost-user: REM_MEM_REG {Region} matches no region", d);
            return 1;
        }
        return 0;
    }

    private Vring Queue(uint index)
    {
        if (index >= (uint)_queues.Length)
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidVringIndex, $"vring {index} of {_queues.Length}");
        }
        return _queues[index];
    }

    private ulong SetVringNum(VringState s)
    {
        Vring q = Queue(s.Index);
        if (!s.IsValidSize())
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidVringState, $"vring {s.Index} size {s.Num}");
        }
        return q.SetSize((int)s.Num) ? 0UL : 1UL;
    }

    private ulong SetVringBase(VringState s)
    {
        Vring q = Queue(s.Index);
        if (!s.IsValidBase())
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidVringState, $"vring {s.Index} base {s.Num}");
        }
        return q.SetBase((ushort)s.Num) ? 0UL : 1UL;
    }

    private ulong SetVringAddr(VringAddress a)
    {
        Vring q = Queue(a.Index);
        if (!a.IsValid())
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidVringAddress, $"vring {a.Index} addresses {a}");
        }
        return q.SetAddress(a) ? 0UL : 1UL;
    }

    private void GetVringBase(in MessageHeader h, VringState s)
    {
        Vring q = Queue(s.Index);
        ushort next = q.Stop();
        NotifyStopped();
        Span<byte> b = stackalloc byte[VringState.Length];
        new VringState(s.Index, next).Write(b);
        Reply(h, b);
    }

    private ulong SetVringFd(VhostUserRequestType type, VringFdPayload v, ReceivedFds fds)
    {
        if (!v.IsValid())
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidVringState, $"{type} payload 0x{v.Value:x}");
        }
        Vring q = Queue(v.Index);
        if (v.NoFd != (fds.Count == 0))
        {
            throw new VhostUserProtocolException(VhostUserError.UnexpectedFileDescriptors, $"{type}: no-fd flag {v.NoFd} with {fds.Count} fds");
        }
        FdHandle? fd = v.NoFd ? null : fds.Take(0);
        if (fd is not null && !EventFd.IsEventFd(fd))
        {
            // A pipe or socket at EOF as kick fd would spin the queue thread; a file as call fd would grow on disk.
            fd.Dispose();
            throw new VhostUserProtocolException(VhostUserError.UnexpectedFileDescriptors, $"{type}: fd is not an eventfd");
        }
        if (fd is not null && !EventFd.MakeNonBlocking(fd))
        {
            fd.Dispose();
            throw new VhostUserProtocolException(VhostUserError.UnexpectedFileDescriptors, $"{type}: fd refuses O_NONBLOCK");
        }
        if (fd is not null && type == VhostUserRequestType.SetVringKick && !EventFd.ReadsLikeEventFd(fd))
        {
            // An epoll or signalfd as kick fd: readable forever, never drained, the queue thread would spin.
            fd.Dispose();
            throw new VhostUserProtocolException(VhostUserError.UnexpectedFileDescriptors, $"{type}: fd does not read like an eventfd");
        }
        switch (type)
        {
            case VhostUserRequestType.SetVringCall:
                q.SetCall(fd);
                return 0;
            case VhostUserRequestType.SetVringErr:
                q.SetErr(fd);
                return 0;
            default:
                if (fd is null)
                {
                    // Polling mode (no kick fd) is not supported.
                    return 1;
                }
                // Without VHOST_USER_F_PROTOCOL_FEATURES a ring is enabled as soon as it starts (vhost-user.rst).
                bool protocolFeatures = (_ackedFeatures & VirtioFeatures.VhostUserProtocolFeatures) != 0;
                q.Start(fd, (_ackedFeatures & VirtioFeatures.RingEventIdx) != 0,
                    (_ackedFeatures & VirtioFeatures.RingIndirectDesc) != 0, enableNow: !protocolFeatures);
                return 0;
        }
    }

    private ulong SetVringEnable(VringState s)
    {
        Vring q = Queue(s.Index);
        if (!s.IsValidEnable())
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidVringState, $"SET_VRING_ENABLE {s.Num}");
        }
        q.SetEnabled(s.Num == 1);
        return 0;
    }

    private void GetConfig(in MessageHeader h, ReadOnlySpan<byte> p)
    {
        var c = ConfigHeader.Read(p);
        if (!c.IsValid(p.Length))
        {
            throw new VhostUserProtocolException(VhostUserError.InvalidConfigRequest, $"GET_CONFIG offset {c.Offset} size {c.Size}");
        }
        // Reply: same header, then the requested window of config space; bytes past its end read as zero.
        Span<byte> b = _reply.AsSpan(MessageHeader.Length, ConfigHeader.Length + (int)c.Size);
        c.Write(b);
        Span<byte> window = b.Slice(ConfigHeader.Length);
        window.Clear();
        ReadOnlySpan<byte> config = _device.Config.Span;
        if (c.Offset < config.Length)
        {
            ReadOnlySpan<byte> src = config.Slice((int)c.Offset);
            src.Slice(0, Math.Min(src.Length, window.Length)).CopyTo(window);
        }
        SendReply(h, b.Length);
    }

    private void ReplyU64(in MessageHeader h, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Reply(h, b);
    }

    private void Reply(in MessageHeader h, ReadOnlySpan<byte> payload)
    {
        payload.CopyTo(_reply.AsSpan(MessageHeader.Length));
        SendReply(h, payload.Length);
    }

    /// <summary>Sends header + the payload already placed at _reply[12..].</summary>
    private void SendReply(in MessageHeader h, int payloadLength)
    {
        new MessageHeader(h.Request, MessageHeader.Version1 | MessageHeader.ReplyFlag, (uint)payloadLength).Write(_reply);
        _channel.Send(_reply.AsSpan(0, MessageHeader.Length + payloadLength));
    }

    private void ResetQueues()
    {
        foreach (Vring q in _queues)
        {
            q.Reset();
        }
        NotifyStopped();
    }

    private void ResetDevice()
    {
        ResetQueues();
        _ackedFeatures = 0;
        _status = 0;
        // The memory table belongs to the owner, not the device (vhost-user.rst): it stays.
    }

    private void NotifyStopped()
    {
        try
        {
            _device.OnStopped();
        }
        catch (Exception e)
        {
            _logger.LogError(e, "vhost-user: device threw from OnStopped");
        }
    }

    /// <summary>
    /// The front-end is gone (or broke the protocol, or the server stops). Unlike GET_VRING_BASE this does not wait
    /// for in-flight requests: nobody will read their replies, and a request blocked on the helper or a slow
    /// filesystem must hold up neither the exit nor the next front-end. In order: the queue threads end and the
    /// used rings are fenced (epoch), then the memory gate closes (waits for copies and preadv/pwritev already
    /// into guest buffers, refuses new ones) and every mapping goes, then the fds.
    /// </summary>
    private void StopEverything()
    {
        int abandoned = 0;
        foreach (Vring q in _queues)
        {
            abandoned += q.Abandon();
        }
        _memory.Gate.Close();
        if (abandoned > 0)
        {
            _logger.LogInformation("vhost-user: {Count} requests were in flight; their replies are dropped and they write no guest memory", abandoned);
        }
        NotifyStopped();
        foreach (Vring q in _queues)
        {
            q.Dispose(); // closes kick/call/err fds and ends the notifier threads
        }
        _memory.Dispose();
        _backendReq?.Dispose();
        _backendReq = null;
    }

    public void Dispose() => _channel.Dispose();
}

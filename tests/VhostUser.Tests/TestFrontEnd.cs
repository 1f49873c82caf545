using System.Buffers.Binary;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests;

/// <summary>Plays QEMU: connects to the backend's socket and sends vhost-user messages with SCM_RIGHTS fds.</summary>
internal sealed unsafe class TestFrontEnd : IDisposable
{
    public const uint Version = 1;
    public const uint NeedReply = 0x9;
    private int _fd;

    private TestFrontEnd(int fd) => _fd = fd;

    public static TestFrontEnd Connect(string path)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            Assert.True(fd >= 0);
            sockaddr_un addr = default;
            addr.sun_family = AF_UNIX;
            byte[] p = Encoding.UTF8.GetBytes(path);
            byte* sp = (byte*)&addr + sockaddr_un.sun_path_offset;
            for (int i = 0; i < p.Length; i++)
            {
                sp[i] = p[i];
            }
            if (connect(fd, (sockaddr*)&addr, sizeof(sockaddr_un)) == 0)
            {
                return new TestFrontEnd(fd);
            }
            close(fd);
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("backend socket never appeared");
            }
            Thread.Sleep(20);
        }
    }

    public void SendRaw(ReadOnlySpan<byte> bytes, params int[] fds)
    {
        fixed (byte* b = bytes)
        {
            iovec iov = default;
            iov.iov_base = b;
            iov.iov_len = bytes.Length;
            msghdr msg = default;
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            int controlLength = CMSG_SPACE(sizeof(int) * Math.Max(1, fds.Length));
            byte* control = stackalloc byte[controlLength];
            new Span<byte>(control, controlLength).Clear();
            if (fds.Length > 0)
            {
                msg.msg_control = control;
                msg.msg_controllen = controlLength;
                cmsghdr* c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                // Not CMSG_LEN: Tmds.LibC 0.5.0's CMSG_LEN(4) returns 24 (aligned), which makes the kernel send an
                // extra fd (0). The header is 16 bytes on x86-64, data follows unpadded.
                c->cmsg_len = sizeof(cmsghdr) + sizeof(int) * fds.Length;
                int* data = (int*)CMSG_DATA(c);
                for (int i = 0; i < fds.Length; i++)
                {
                    data[i] = fds[i];
                }
            }
            long n = sendmsg(_fd, &msg, MSG_NOSIGNAL);
            Assert.Equal(bytes.Length, n);
        }
    }

    public void Send(VhostUserRequestType type, uint flags, ReadOnlySpan<byte> payload, params int[] fds)
    {
        var b = new byte[12 + payload.Length];
        new MessageHeader((uint)type, flags, (uint)payload.Length).Write(b);
        payload.CopyTo(b.AsSpan(12));
        SendRaw(b, fds);
    }

    public void SendU64(VhostUserRequestType type, uint flags, ulong value, params int[] fds)
    {
        Span<byte> p = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(p, value);
        Send(type, flags, p, fds);
    }

    public void SendState(VhostUserRequestType type, uint flags, uint index, uint num)
    {
        Span<byte> p = stackalloc byte[8];
        new VringState(index, num).Write(p);
        Send(type, flags, p);
    }

    /// <summary>QEMU 11.1's opening (as traced behind vhost-user-test-device-pci): features, protocol features with REPLY_ACK, then SET_FEATURES.</summary>
    public void Negotiate(ulong features = VirtioFeatures.Version1 | VirtioFeatures.RingIndirectDesc
        | VirtioFeatures.VhostUserProtocolFeatures | 1)
    {
        Send(VhostUserRequestType.GetFeatures, Version, default);
        ExpectU64(VhostUserRequestType.GetFeatures);
        Send(VhostUserRequestType.GetProtocolFeatures, Version, default);
        ExpectU64(VhostUserRequestType.GetProtocolFeatures);
        SendU64(VhostUserRequestType.SetProtocolFeatures, Version,
            VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config
            | VhostUserProtocolFeatures.ConfigureMemSlots | VhostUserProtocolFeatures.Status);
        SendU64(VhostUserRequestType.SetFeatures, NeedReply, features);
        ExpectAck(VhostUserRequestType.SetFeatures);
    }

    /// <summary>ADD_MEM_REG with the region's memfd; returns the REPLY_ACK status.</summary>
    public ulong AddMemReg(MemoryRegionDescription region, int fd)
    {
        var payload = new byte[8 + MemoryRegionDescription.Length];
        region.Write(payload.AsSpan(8));
        Send(VhostUserRequestType.AddMemReg, NeedReply, payload, fd);
        return ExpectU64(VhostUserRequestType.AddMemReg);
    }

    /// <summary>SET_VRING_NUM, _BASE, _ADDR, _CALL, (_ERR when <paramref name="err"/> is an eventfd), _KICK and
    /// _ENABLE for <paramref name="driver"/>'s ring, each acked: the ring set-up every test and the bench share.
    /// <paramref name="baseIndex"/>: where the ring restarts (the GET_VRING_BASE answer after a stop).</summary>
    public void StartVring(MockDriver driver, int kick, int call, uint index = 0, int err = -1, uint baseIndex = 0)
    {
        SendState(VhostUserRequestType.SetVringNum, NeedReply, index, driver.Size);
        ExpectAck(VhostUserRequestType.SetVringNum);
        SendState(VhostUserRequestType.SetVringBase, NeedReply, index, baseIndex);
        ExpectAck(VhostUserRequestType.SetVringBase);
        var addr = new byte[VringAddress.Length];
        driver.Address(index).Write(addr);
        Send(VhostUserRequestType.SetVringAddr, NeedReply, addr);
        ExpectAck(VhostUserRequestType.SetVringAddr);
        SendU64(VhostUserRequestType.SetVringCall, NeedReply, index, call);
        ExpectAck(VhostUserRequestType.SetVringCall);
        if (err >= 0)
        {
            SendU64(VhostUserRequestType.SetVringErr, NeedReply, index, err);
            ExpectAck(VhostUserRequestType.SetVringErr);
        }
        SendU64(VhostUserRequestType.SetVringKick, NeedReply, index, kick);
        ExpectAck(VhostUserRequestType.SetVringKick);
        SendState(VhostUserRequestType.SetVringEnable, NeedReply, index, 1);
        ExpectAck(VhostUserRequestType.SetVringEnable);
    }

    /// <summary>GET_STATUS: the device status byte, with NEEDS_RESET (0x40) once a ring broke.</summary>
    public ulong GetStatus()
    {
        Send(VhostUserRequestType.GetStatus, Version, default);
        return ExpectU64(VhostUserRequestType.GetStatus);
    }

    /// <summary>GET_VRING_BASE: stops the ring and returns the next avail index it would have processed.</summary>
    public uint GetVringBase(uint index = 0)
    {
        SendState(VhostUserRequestType.GetVringBase, Version, index, 0);
        return VringState.Read(ExpectReply(VhostUserRequestType.GetVringBase)).Num;
    }

    /// <summary>Reads one reply; returns null on EOF (the backend closed the connection).</summary>
    public (MessageHeader Header, byte[] Payload)? Receive(int timeoutMs = 10000)
    {
        var header = new byte[12];
        if (!ReadExactly(header, timeoutMs))
        {
            return null;
        }
        var h = MessageHeader.Read(header);
        var payload = new byte[h.Size];
        Assert.True(ReadExactly(payload, timeoutMs));
        return (h, payload);
    }

    public byte[] ExpectReply(VhostUserRequestType type)
    {
        var r = Receive() ?? throw new Xunit.Sdk.XunitException($"connection closed awaiting {type} reply");
        Assert.Equal((uint)type, r.Header.Request);
        Assert.Equal(0x5u, r.Header.Flags); // version 1 | reply
        return r.Payload;
    }

    public ulong ExpectU64(VhostUserRequestType type)
    {
        byte[] p = ExpectReply(type);
        Assert.Equal(8, p.Length);
        return BinaryPrimitives.ReadUInt64LittleEndian(p);
    }

    public void ExpectAck(VhostUserRequestType type, ulong status = 0) => Assert.Equal(status, ExpectU64(type));

    /// <summary>True if the backend closed the connection (EOF) within the timeout.</summary>
    public bool WaitClosed(int timeoutMs = 10000)
    {
        var b = new byte[1];
        return !ReadExactly(b, timeoutMs);
    }

    private bool ReadExactly(byte[] buffer, int timeoutMs)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            pollfd p = default;
            p.fd = _fd;
            p.events = POLLIN;
            int r = poll(&p, 1, timeoutMs);
            if (r == 0)
            {
                throw new TimeoutException("no reply from backend");
            }
            fixed (byte* b = buffer)
            {
                long n = recv(_fd, b + done, buffer.Length - done, 0);
                if (n <= 0)
                {
                    return false;
                }
                done += (int)n;
            }
        }
        return true;
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            close(_fd);
            _fd = -1;
        }
    }

    public static int NewEventFd() => eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    public static void Kick(int fd)
    {
        ulong one = 1;
        Assert.Equal(8, (long)write(fd, &one, 8));
    }

    /// <summary>Waits until an eventfd is signalled, then resets it.</summary>
    public static bool WaitSignalled(int fd, int timeoutMs = 10000)
    {
        pollfd p = default;
        p.fd = fd;
        p.events = POLLIN;
        if (poll(&p, 1, timeoutMs) != 1)
        {
            return false;
        }
        ulong v;
        read(fd, &v, 8);
        return true;
    }
}

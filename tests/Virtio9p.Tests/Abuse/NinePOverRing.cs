using System.Buffers.Binary;
using VirtFs.VhostUser.Tests;
using VirtFs.Virtio9p.Device;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;
using VirtFs.Virtio9p.Server;
using VirtFs.Virtio9p.Tests.Server;

namespace VirtFs.Virtio9p.Tests.Abuse;

/// <summary>
/// A 9P session the way a guest holds one: the real <see cref="Virtio9pDevice"/> and <see cref="P9Server"/> over the
/// in-process filesystem in a scratch export, behind the real vhost-user server, driven by
/// <see cref="EmulatedQemu"/> (memfd RAM, eventfds, split ring). Each request goes into guest memory as a readable
/// descriptor, the reply comes back in a writable one; every other guest byte must keep its sentinel.
/// </summary>
internal sealed class NinePOverRing : IDisposable
{
    public const ulong RequestOffset = 0;
    public const ulong ReplyOffset = 0x2_0000;
    private ushort _nextTag = 1;

    /// <param name="parent">Where the scratch export goes (default: the temp directory).</param>
    public NinePOverRing(ushort queueSize = 64, ulong ramSize = 4 << 20, string? parent = null)
    {
        Parent = parent is null ? Directory.CreateTempSubdirectory("p9ring-").FullName
            : Directory.CreateDirectory(Path.Combine(parent, $"p9ring-{Guid.NewGuid():N}")).FullName;
        Export = Path.Combine(Parent, "export");
        Directory.CreateDirectory(Export);
        File.WriteAllText(Path.Combine(Parent, "outside"), "secret");
        FileSystem = new LocalFileSystem(Export);
        Server = new P9Server(FileSystem, Logger);
        Device = new Virtio9pDevice("abuse", Server, workerCount: 2, Logger);
        Qemu = EmulatedQemu.Start(Device, Logger, queueSize, ramSize);
    }

    public string Parent { get; }
    public string Export { get; }
    public ListLogger Logger { get; } = new();
    public LocalFileSystem FileSystem { get; }
    public P9Server Server { get; }
    public Virtio9pDevice Device { get; }
    public EmulatedQemu Qemu { get; }
    public ulong RequestGpa => Qemu.DataGpa + RequestOffset;
    public ulong ReplyGpa => Qemu.DataGpa + ReplyOffset;

    public static byte[] Message(P9MessageType type, ushort tag, Action<P9TestClient.Builder> body, uint? sizeField = null)
    {
        var builder = new P9TestClient.Builder();
        body(builder);
        byte[] b = builder.ToArray();
        var m = new byte[P9Limits.HeaderSize + b.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, sizeField ?? (uint)m.Length);
        m[4] = (byte)type;
        BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(5), tag);
        b.CopyTo(m, P9Limits.HeaderSize);
        return m;
    }

    public P9TestClient.Reply Call(P9MessageType type, Action<P9TestClient.Builder> body, int replyCapacity = 8192) =>
        new(Exchange(Message(type, type == P9MessageType.Tversion ? P9Limits.NoTag : _nextTag++, body), replyCapacity));

    public void Handshake(uint msize = 131072)
    {
        Call(P9MessageType.Tversion, b => b.U32(msize).Str("9P2000.L")).Expect(P9MessageType.Rversion);
        Call(P9MessageType.Tattach, b => b.U32(0).U32(P9Limits.NoFid).Str("root").Str("").U32(0)).Expect(P9MessageType.Rattach);
    }

    /// <summary>
    /// One request through the ring: the request bytes in <paramref name="requestSplits"/>-sized readable descriptors
    /// (one if null), <paramref name="replyCapacity"/> writable bytes. Returns the reply (the used length's worth),
    /// after checking nothing else in guest memory changed and the ring is healthy.
    /// </summary>
    public byte[] Exchange(byte[] request, int replyCapacity, int[]? requestSplits = null)
    {
        Qemu.ResetData();
        request.CopyTo(Qemu.Ram.Span(RequestGpa, request.Length));
        var chain = new List<(ulong, uint, bool)>();
        int at = 0;
        foreach (int piece in requestSplits ?? [request.Length])
        {
            if (piece > 0)
            {
                chain.Add((RequestGpa + (ulong)at, (uint)piece, false));
            }
            at += piece;
        }
        Assert.Equal(request.Length, at);
        if (replyCapacity > 0)
        {
            chain.Add((ReplyGpa, (uint)replyCapacity, true));
        }
        int used = Qemu.Driver.UsedIdx;
        ushort head = Qemu.Driver.AddChain(chain.ToArray());
        Qemu.Submit(head);
        Assert.True(Qemu.WaitUsed(used + 1), "no reply in the used ring");
        (uint id, uint length) = Qemu.Driver.Used(used);
        Assert.Equal(head, id);
        Assert.InRange(length, 0u, (uint)Math.Max(0, replyCapacity));
        // virtio 1.2, 2.7.8.1: a device MAY write more than the used length into the writable buffers, never elsewhere.
        Qemu.AssertDataUntouched((RequestGpa, (ulong)request.Length), (ReplyGpa, (ulong)Math.Max(0, replyCapacity)));
        Assert.True(Qemu.Ram.Span(RequestGpa, request.Length).SequenceEqual(request), "the backend wrote into a readable buffer");
        return Qemu.Ram.Span(ReplyGpa, (int)length).ToArray();
    }

    /// <summary>
    /// Many requests in one kick, each with its own slot of <paramref name="slot"/> bytes (request in the first half,
    /// reply in the second). Returns the replies in submission order.
    /// </summary>
    public byte[][] Batch(IReadOnlyList<byte[]> requests, int slot = 256)
    {
        int used = Qemu.Driver.UsedIdx;
        var heads = new ushort[requests.Count];
        for (int i = 0; i < requests.Count; i++)
        {
            ulong s = Qemu.DataGpa + (ulong)(i * slot);
            requests[i].CopyTo(Qemu.Ram.Span(s, requests[i].Length));
            heads[i] = Qemu.Driver.AddChain((s, (uint)requests[i].Length, false), (s + (ulong)slot / 2, (uint)slot / 2, true));
            Qemu.Driver.Publish(heads[i]);
        }
        TestFrontEnd.Kick(Qemu.Kick);
        Assert.True(Qemu.WaitUsed(used + requests.Count), "not every request of the batch was answered");
        var replies = new byte[requests.Count][];
        for (int u = 0; u < requests.Count; u++)
        {
            (uint id, uint length) = Qemu.Driver.Used(used + u);
            int i = Array.IndexOf(heads, (ushort)id);
            replies[i] = Qemu.Ram.Span(Qemu.DataGpa + (ulong)(i * slot) + (ulong)slot / 2, (int)length).ToArray();
        }
        return replies;
    }

    public ushort NextTag() => _nextTag++;

    public void Dispose()
    {
        Qemu.Dispose();
        Device.Dispose();
        FileSystem.Dispose();
        Directory.Delete(Parent, recursive: true);
    }
}

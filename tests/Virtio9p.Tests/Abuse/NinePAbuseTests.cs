using System.Buffers.Binary;
using VirtFs.VhostUser.Tests;
using VirtFs.Virtio9p.Protocol;
using VirtFs.Virtio9p.Tests.Server;
using Xunit.Abstractions;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;
using static VirtFs.ProxyFs.Protocol.Errno;

namespace VirtFs.Virtio9p.Tests.Abuse;

/// <summary>
/// A hostile guest's 9P requests over a real ring (see <see cref="NinePOverRing"/>). Every case asserts the exact
/// reply (Rlerror errno, compared with QEMU's hw/9pfs where it has one), that nothing outside the reply buffer was
/// written, that the ring stays healthy and that the session still answers.
/// Errnos: EINVAL 22 for framing/decoding lies (QEMU's pdu_unmarshal failures and P9_MAXWELEM are EINVAL too),
/// EOPNOTSUPP 95 for unknown types (QEMU's v9fs_op_not_supp), ENOENT 2 for a fid that does not exist
/// (QEMU's get_fid), EMSGSIZE 90 for a reply that does not fit.
/// </summary>
public sealed class NinePAbuseTests : IDisposable
{
    /// <summary>Two descriptors a request: half as many requests in flight at once.</summary>
    private const ushort QueueSize = 1024;
    private readonly ITestOutputHelper _output;
    private readonly NinePOverRing _ring;

    public NinePAbuseTests(ITestOutputHelper output)
    {
        _output = output;
        _ring = new NinePOverRing(QueueSize);
        Directory.CreateDirectory(Path.Combine(_ring.Export, "d/e"));
        File.WriteAllBytes(Path.Combine(_ring.Export, "d/f"), Enumerable.Range(0, 64 * 1024).Select(i => (byte)i).ToArray());
        _ring.Handshake();
    }

    public void Dispose()
    {
        foreach (var e in _ring.Logger.Entries)
        {
            _output.WriteLine($"{e.Level}: {e.Message}");
        }
        _ring.Dispose();
    }

    /// <summary>The session still works and the ring is not broken.</summary>
    private void AssertSessionUsable()
    {
        _ring.Call(T.Tgetattr, b => b.U32(0).U64(0x7ff)).Expect(T.Rgetattr);
        Assert.Equal(0UL, _ring.Qemu.FrontEnd.GetStatus() & EmulatedQemu.NeedsReset);
    }

    private int Errno(byte[] reply)
    {
        var r = new P9TestClient.Reply(reply);
        Assert.Equal(T.Rlerror, r.Type);
        Assert.Equal(11, reply.Length);
        Assert.Equal(11, r.Size);
        return r.Errno;
    }

    private byte[] Raw(T type, Action<P9TestClient.Builder> body, uint? sizeField = null, int replyCapacity = 8192) =>
        _ring.Exchange(NinePOverRing.Message(type, _ring.NextTag(), body, sizeField), replyCapacity);

    private uint OpenFile(uint fid, string path, uint flags = 0)
    {
        _ring.Call(T.Twalk, b => { b.U32(0).U32(fid).U16((ushort)path.Split('/').Length); foreach (string n in path.Split('/')) b.Str(n); }).Expect(T.Rwalk);
        _ring.Call(T.Tlopen, b => b.U32(fid).U32(flags)).Expect(T.Rlopen);
        return fid;
    }

    public static TheoryData<string, int> Framing() => new()
    {
        { "size field larger than the message", EINVAL },
        { "size field smaller than the message", EINVAL },
        { "size field 0", EINVAL },
        { "size field 2^32 - 1", EINVAL },
        { "string length past the end", EINVAL },
        { "name count past the end", EINVAL },
        { "Twrite count past the end", EINVAL },
        { "trailing bytes after the last field", EINVAL },
        { "Tattach without its n_uname", EINVAL },
    };

    [Theory]
    [MemberData(nameof(Framing))]
    public void Framing_lies_get_the_exact_errno(string name, int errno)
    {
        uint file = OpenFile(5, "d/f", 2);
        byte[] reply = name switch
        {
            "size field larger than the message" => Raw(T.Tgetattr, b => b.U32(0).U64(0x7ff), sizeField: 100),
            "size field smaller than the message" => Raw(T.Tgetattr, b => b.U32(0).U64(0x7ff), sizeField: 12),
            "size field 0" => Raw(T.Tgetattr, b => b.U32(0).U64(0x7ff), sizeField: 0),
            "size field 2^32 - 1" => Raw(T.Tgetattr, b => b.U32(0).U64(0x7ff), sizeField: uint.MaxValue),
            "string length past the end" => Raw(T.Twalk, b => b.U32(0).U32(1).U16(1).U16(500).Bytes([1, 2, 3])),
            "name count past the end" => Raw(T.Twalk, b => b.U32(0).U32(1).U16(3).Str("d")),
            "Twrite count past the end" => Raw(T.Twrite, b => b.U32(file).U64(0).U32(100).Bytes(new byte[4])),
            "trailing bytes after the last field" => Raw(T.Tclunk, b => b.U32(file).U32(0)),
            "Tattach without its n_uname" => Raw(T.Tattach, b => b.U32(9).U32(P9Limits.NoFid).Str("root").Str("")),
            _ => throw new ArgumentException(name),
        };
        Assert.Equal(errno, Errno(reply));
        Assert.Equal(new byte[64], ReadFile(file, 0, 64).Select((b, i) => (byte)(b ^ i)).ToArray()); // Twrite wrote nothing
        AssertSessionUsable();
    }

    private byte[] ReadFile(uint fid, ulong offset, uint count)
    {
        var r = _ring.Call(T.Tread, b => b.U32(fid).U64(offset).U32(count), replyCapacity: (int)count + 11).Expect(T.Rread);
        return r.Take((int)r.U32());
    }

    [Theory]
    [InlineData((byte)0)]
    [InlineData((byte)1)]
    [InlineData((byte)7)] // Rlerror sent as a request
    [InlineData((byte)102)] // Tauth
    [InlineData((byte)124)] // Tstat (9P2000, not .L)
    [InlineData((byte)255)]
    public void Unknown_types_are_eopnotsupp(byte type)
    {
        Assert.Equal(EOPNOTSUPP, Errno(Raw((T)type, b => b.U32(0))));
        AssertSessionUsable();
    }

    [Fact]
    public void Request_shorter_than_a_header_gets_no_reply_bytes()
    {
        Assert.Empty(_ring.Exchange([7, 0, 0, 0, 100, 1], 8192));
        Assert.Empty(_ring.Exchange([], 8192)); // writable-only chain: nothing to read
        AssertSessionUsable();
    }

    [Fact]
    public void Reply_buffer_smaller_than_any_reply_gets_a_used_length_of_zero()
    {
        // 10 writable bytes cannot hold even an Rlerror (11): used length 0 (the guest sees no reply), nothing
        // written outside those 10 bytes (Exchange checks), and the session goes on.
        Assert.Empty(_ring.Exchange(NinePOverRing.Message(T.Tgetattr, 1, b => b.U32(0).U64(0x7ff)), 10));
        Assert.Empty(_ring.Exchange(NinePOverRing.Message(T.Tgetattr, 1, b => b.U32(0).U64(0x7ff)), 0));
        AssertSessionUsable();
    }

    [Fact]
    public void Request_split_into_one_byte_descriptors_is_gathered()
    {
        byte[] m = NinePOverRing.Message(T.Tgetattr, 1, b => b.U32(0).U64(0x7ff));
        new P9TestClient.Reply(_ring.Exchange(m, 8192, Enumerable.Repeat(1, m.Length).ToArray())).Expect(T.Rgetattr);
    }

    [Fact]
    public void Walk_names_are_checked()
    {
        ulong rootPath = _ring.Call(T.Tgetattr, b => b.U32(0).U64(0x7ff)).Expect(T.Rgetattr).Skip8().Qid().Path;
        Assert.Equal(EINVAL, _ring.Call(T.Twalk, b => { b.U32(0).U32(1).U16(17); for (int i = 0; i < 17; i++) b.Str("d"); }).Errno);
        // QEMU's name_is_illegal answers ENOENT for "" and names with '/'; we answer EINVAL (the name is
        // malformed, not missing). Either way no fid is created and nothing outside the export is reached.
        Assert.Equal(EINVAL, _ring.Call(T.Twalk, b => b.U32(0).U32(1).U16(1).Str("/")).Errno);
        Assert.Equal(EINVAL, _ring.Call(T.Twalk, b => b.U32(0).U32(1).U16(1).Str("d/e")).Errno);
        Assert.Equal(EINVAL, _ring.Call(T.Twalk, b => b.U32(0).U32(1).U16(1).Str("")).Errno);
        Assert.Equal(EINVAL, _ring.Call(T.Twalk, b => b.U32(0).U32(1).U16(1).Str("d\0e")).Errno);
        Assert.Equal(EINVAL, _ring.Call(T.Twalk, b => b.U32(0).U32(1).U16(1).Str("d\0")).Errno);
        // ".." at the root stays at the root (QEMU: same); "." names the directory itself.
        var walk = _ring.Call(T.Twalk, b => b.U32(0).U32(1).U16(3).Str("..").Str("..").Str("..")).Expect(T.Rwalk);
        Assert.Equal(3, walk.U16());
        walk.Qid();
        walk.Qid();
        Assert.Equal(rootPath, walk.Qid().Path);
        // "../outside" from the root: ".." stays, "outside" (next to the export) is not found: a partial Rwalk
        // of one qid, and no fid 2 (9P: newfid is only created when every name was walked).
        var partial = _ring.Call(T.Twalk, b => b.U32(1).U32(2).U16(2).Str("..").Str("outside")).Expect(T.Rwalk);
        Assert.Equal(1, partial.U16());
        Assert.Equal(ENOENT, _ring.Call(T.Tgetattr, b => b.U32(2).U64(0x7ff)).Errno);
        AssertSessionUsable();
    }

    [Fact]
    public void Fid_reuse_and_clunked_fids()
    {
        _ring.Call(T.Twalk, b => b.U32(0).U32(1).U16(1).Str("d")).Expect(T.Rwalk);
        // newfid in use: EINVAL, as QEMU's v9fs_walk answers when alloc_fid fails.
        Assert.Equal(EINVAL, _ring.Call(T.Twalk, b => b.U32(0).U32(1).U16(0)).Errno);
        // Tattach to a fid in use: EINVAL, as QEMU's v9fs_attach answers when alloc_fid fails.
        Assert.Equal(EINVAL, _ring.Call(T.Tattach, b => b.U32(1).U32(P9Limits.NoFid).Str("root").Str("").U32(0)).Errno);
        _ring.Call(T.Tclunk, b => b.U32(1)).Expect(T.Rclunk);
        Assert.Equal(ENOENT, _ring.Call(T.Tclunk, b => b.U32(1)).Errno); // QEMU: clunk_fid NULL -> ENOENT
        Assert.Equal(ENOENT, _ring.Call(T.Tgetattr, b => b.U32(1).U64(0x7ff)).Errno);
        Assert.Equal(ENOENT, _ring.Call(T.Tread, b => b.U32(1).U64(0).U32(10)).Errno);
        Assert.Equal(ENOENT, _ring.Call(T.Twalk, b => b.U32(uint.MaxValue).U32(3).U16(0)).Errno);
        AssertSessionUsable();
    }

    [Fact]
    public void A_hundred_thousand_fids_either_exist_or_are_refused_cleanly()
    {
        const int Fids = 100_000, PerKick = QueueSize / 2;
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        int created = 0, refused = 0;
        for (int start = 1; start <= Fids; start += PerKick)
        {
            var batch = new List<byte[]>();
            for (int fid = start; fid < Math.Min(start + PerKick, Fids + 1); fid++)
            {
                batch.Add(NinePOverRing.Message(T.Twalk, (ushort)(fid % 60000), b => b.U32(0).U32((uint)fid).U16(1).Str("d")));
            }
            foreach (byte[] reply in _ring.Batch(batch))
            {
                var r = new P9TestClient.Reply(reply);
                if (r.Type == T.Rwalk)
                {
                    created++;
                }
                else
                {
                    Assert.Contains(Errno(reply), new[] { EMFILE, ENOMEM });
                    refused++;
                }
            }
        }
        Assert.Equal(Fids, created + refused);
        Assert.Equal(created + 1, _ring.Server.FidCount);
        long heapGrowth = GC.GetTotalMemory(forceFullCollection: true) - heapBefore;
        _output.WriteLine($"{created} fids created, {refused} refused, heap grew {heapGrowth / 1024} KiB");
        Assert.True(heapGrowth < 64L << 20, $"heap grew {heapGrowth} bytes for {created} fids");
        AssertSessionUsable();
        // A new session forgets them all.
        _ring.Handshake();
        Assert.Equal(1, _ring.Server.FidCount);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(11u)]
    [InlineData(4095u)]
    public void Msize_below_the_minimum_is_emsgsize_like_qemu(uint msize)
    {
        // QEMU's v9fs_version: msize < P9_MIN_MSIZE (4096) is EMSGSIZE, after the session was reset.
        Assert.Equal(EMSGSIZE, _ring.Call(T.Tversion, b => b.U32(msize).Str("9P2000.L")).Errno);
        Assert.Equal(ENOENT, _ring.Call(T.Tgetattr, b => b.U32(0).U64(0x7ff)).Errno); // the old session's fids are gone
        // An unknown dialect is reported as such whatever the msize (QEMU: "reporting invalid version has priority").
        var v = _ring.Call(T.Tversion, b => b.U32(msize).Str("9P2000.u")).Expect(T.Rversion);
        v.U32();
        Assert.Equal("unknown", v.Str());
        _ring.Handshake(); // a sane Tversion starts over
        AssertSessionUsable();
    }

    [Fact]
    public void Absurd_msize_is_clamped_and_then_enforced()
    {
        var v = _ring.Call(T.Tversion, b => b.U32(uint.MaxValue).Str("9P2000.L")).Expect(T.Rversion);
        Assert.Equal((uint)P9Limits.MaxMessageSize, v.U32());
        _ring.Handshake(8192);
        // A request larger than the negotiated msize is refused before it is read.
        Assert.Equal(EINVAL, Errno(Raw(T.Tgetattr, b => b.U32(0).U64(0x7ff).Bytes(new byte[8192]))));
        AssertSessionUsable();
    }

    [Fact]
    public void Read_counts_beyond_msize_or_the_buffer()
    {
        _ring.Handshake(8192);
        uint file = OpenFile(5, "d/f");
        // Count beyond msize: clamped to msize - 11 (QEMU: same).
        var r = _ring.Call(T.Tread, b => b.U32(file).U64(0).U32(uint.MaxValue), replyCapacity: 64 * 1024).Expect(T.Rread);
        uint count = r.U32();
        Assert.Equal(8192u - 11, count);
        Assert.Equal(Enumerable.Range(0, (int)count).Select(i => (byte)i), r.Take((int)count));
        // Count within msize but beyond the writable buffer: never written past the buffer.
        byte[] small = _ring.Exchange(NinePOverRing.Message(T.Tread, 9, b => b.U32(file).U64(0).U32(4096)), 100);
        var s = new P9TestClient.Reply(small);
        if (s.Type == T.Rread)
        {
            Assert.True(s.U32() <= 100 - 11);
        }
        else
        {
            Assert.Equal(EMSGSIZE, s.Errno);
        }
        // Offset past the end of the file: an empty read; past 2^63 - 1 (negative for preadv, as in QEMU): EINVAL.
        Assert.Equal(0u, _ring.Call(T.Tread, b => b.U32(file).U64(1UL << 62).U32(100)).Expect(T.Rread).U32());
        Assert.Equal(EINVAL, _ring.Call(T.Tread, b => b.U32(file).U64(ulong.MaxValue).U32(100)).Errno);
        AssertSessionUsable();
    }

    [Fact]
    public void Write_counts_beyond_msize_or_the_data_sent()
    {
        _ring.Handshake(8192);
        uint file = OpenFile(5, "d/f", 2);
        // The count says more than the message carries.
        Assert.Equal(EINVAL, Errno(Raw(T.Twrite, b => b.U32(file).U64(0).U32(uint.MaxValue).Bytes(new byte[16]))));
        // Data beyond msize: the message itself is larger than msize.
        Assert.Equal(EINVAL, Errno(Raw(T.Twrite, b => b.U32(file).U64(0).U32(9000).Bytes(new byte[9000]))));
        byte[] content = File.ReadAllBytes(Path.Combine(_ring.Export, "d/f"));
        Assert.Equal(Enumerable.Range(0, 64 * 1024).Select(i => (byte)i), content); // nothing written
        AssertSessionUsable();
    }

    [Theory]
    [InlineData(0xdead_beef_dead_beefUL)]
    [InlineData(ulong.MaxValue)]
    [InlineData(0x7fff_ffff_ffff_ffffUL)]
    [InlineData(12345UL)]
    public void Readdir_with_garbage_offsets_answers_without_harm(ulong offset)
    {
        _ring.Call(T.Twalk, b => b.U32(0).U32(3).U16(1).Str("d")).Expect(T.Rwalk);
        _ring.Call(T.Tlopen, b => b.U32(3).U32(0x10000)).Expect(T.Rlopen);
        var r = new P9TestClient.Reply(_ring.Exchange(NinePOverRing.Message(T.Treaddir, 9, b => b.U32(3).U64(offset).U32(8192)), 8192));
        if (r.Type == T.Rreaddir)
        {
            Assert.Equal(r.Bytes.Length, 11 + (int)r.U32());
        }
        else
        {
            Assert.Equal(EINVAL, r.Errno);
        }
        // Another fid on the same directory lists it whole. (The garbage fid itself may stay at its end: on ext4,
        // after a read at the htree EOF cookie 2^63 - 1 even a seek back to 0 lists nothing. That is the host
        // kernel's, QEMU's seekdir/telldir path shares it, and it harms only the guest's own fid.)
        _ring.Call(T.Twalk, b => b.U32(0).U32(4).U16(1).Str("d")).Expect(T.Rwalk);
        _ring.Call(T.Tlopen, b => b.U32(4).U32(0x10000)).Expect(T.Rlopen);
        var full = _ring.Call(T.Treaddir, b => b.U32(4).U64(0).U32(8192)).Expect(T.Rreaddir);
        Assert.True(full.U32() > 0);
        AssertSessionUsable();
    }

    [Fact]
    public void Readdir_count_zero_or_beyond_msize()
    {
        _ring.Call(T.Twalk, b => b.U32(0).U32(3).U16(1).Str("d")).Expect(T.Rwalk);
        _ring.Call(T.Tlopen, b => b.U32(3).U32(0x10000)).Expect(T.Rlopen);
        Assert.Equal(0u, _ring.Call(T.Treaddir, b => b.U32(3).U64(0).U32(0)).Expect(T.Rreaddir).U32());
        var huge = _ring.Call(T.Treaddir, b => b.U32(3).U64(0).U32(uint.MaxValue), replyCapacity: 64 * 1024).Expect(T.Rreaddir);
        Assert.True(huge.U32() > 0);
        Assert.Equal(ENOENT, _ring.Call(T.Treaddir, b => b.U32(77).U64(0).U32(100)).Errno);
        AssertSessionUsable();
    }

    [Fact]
    public void Flush_of_an_unknown_tag_is_answered_at_once()
    {
        foreach (ushort old in new ushort[] { 0, 4242, P9Limits.NoTag })
        {
            var r = _ring.Call(T.Tflush, b => b.U16(old)).Expect(T.Rflush);
            Assert.Equal(7, r.Bytes.Length);
        }
        // A malformed flush (extra bytes) is a malformed request, not a flush.
        Assert.Equal(EINVAL, Errno(Raw(T.Tflush, b => b.U16(1).U16(2))));
        AssertSessionUsable();
    }

    [Fact]
    public void A_full_ring_of_requests_is_answered_and_more_than_it_holds_breaks_it()
    {
        // Two descriptors a request: QueueSize / 2 requests in flight at once, all answered.
        var batch = Enumerable.Range(0, QueueSize / 2).Select(i => NinePOverRing.Message(T.Tgetattr, (ushort)(100 + i), b => b.U32(0).U64(0x7ff))).ToList();
        foreach (byte[] reply in _ring.Batch(batch, slot: 512))
        {
            new P9TestClient.Reply(reply).Expect(T.Rgetattr);
        }
        ushort used = _ring.Qemu.Driver.UsedIdx;
        // The driver claims a queue and one more heads than the ring holds.
        _ring.Qemu.Driver.SetAvailIdx((ushort)(used + QueueSize + 1));
        TestFrontEnd.Kick(_ring.Qemu.Kick);
        Assert.True(_ring.Qemu.RingBroken());
        Assert.Equal(used, _ring.Qemu.Driver.UsedIdx);
        Assert.Equal(used, (ushort)_ring.Qemu.FrontEnd.GetVringBase());
    }
}

internal static class ReplyExtensions
{
    /// <summary>Skips Rgetattr's valid mask.</summary>
    public static P9TestClient.Reply Skip8(this P9TestClient.Reply r)
    {
        r.U64();
        return r;
    }
}

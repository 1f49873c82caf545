using System.Buffers.Binary;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>
/// A hostile guest: valid messages mutated (bit flips, truncation, lying sizes, random types and fids) must
/// always get a well-formed reply or none, never an exception out of the server, and never touch anything
/// outside the export.
/// </summary>
public sealed class P9FuzzTests : IDisposable
{
    private readonly string _parent;
    private readonly string _export;
    private readonly LocalFileSystem _fs;

    public P9FuzzTests()
    {
        _parent = Directory.CreateTempSubdirectory("p9fuzz-").FullName;
        _export = Path.Combine(_parent, "export");
        Directory.CreateDirectory(Path.Combine(_export, "d/e"));
        File.WriteAllText(Path.Combine(_export, "d/f"), "data");
        File.WriteAllText(Path.Combine(_parent, "outside"), "secret");
        _fs = new LocalFileSystem(_export);
    }

    public void Dispose()
    {
        _fs.Dispose();
        Directory.Delete(_parent, recursive: true);
    }

    private static IEnumerable<(T Type, Action<P9TestClient.Builder> Body)> Seeds()
    {
        yield return (T.Twalk, b => b.U32(0).U32(1).U16(2).Str("d").Str("e"));
        yield return (T.Twalk, b => b.U32(0).U32(2).U16(2).Str("d").Str("f"));
        yield return (T.Twalk, b => b.U32(0).U32(3).U16(3).Str("..").Str("..").Str("outside"));
        yield return (T.Tlopen, b => b.U32(2).U32(2));
        yield return (T.Tlcreate, b => b.U32(1).Str("new").U32(2).U32(0x1A4).U32(0));
        yield return (T.Tread, b => b.U32(2).U64(0).U32(4096));
        yield return (T.Twrite, b => b.U32(2).U64(0).U32(4).Bytes([1, 2, 3, 4]));
        yield return (T.Tgetattr, b => b.U32(0).U64(0x3fff));
        yield return (T.Tsetattr, b => b.U32(2).U32(0x1ff).U32(0x1ff).U32(0).U32(0).U64(1).U64(0).U64(0).U64(0).U64(0));
        yield return (T.Treaddir, b => b.U32(1).U64(0).U32(8192));
        yield return (T.Tmkdir, b => b.U32(0).Str("m").U32(0x1ed).U32(0));
        yield return (T.Tsymlink, b => b.U32(0).Str("s").Str("/etc/passwd").U32(0));
        yield return (T.Tmknod, b => b.U32(0).Str("n").U32(0x11a4).U32(0).U32(0).U32(0));
        yield return (T.Trenameat, b => b.U32(0).Str("m").U32(1).Str("m2"));
        yield return (T.Tunlinkat, b => b.U32(0).Str("m").U32(0x200));
        yield return (T.Txattrwalk, b => b.U32(2).U32(9).Str("user.x"));
        yield return (T.Txattrcreate, b => b.U32(1).Str("user.x").U64(3).U32(0));
        yield return (T.Tlock, b => b.U32(2).U8(1).U32(0).U64(0).U64(0).U32(1).Str("c"));
        yield return (T.Tgetlock, b => b.U32(2).U8(1).U64(0).U64(0).U32(1).Str("c"));
        yield return (T.Tlink, b => b.U32(0).U32(2).Str("hl"));
        yield return (T.Treadlink, b => b.U32(2));
        yield return (T.Tstatfs, b => b.U32(0));
        yield return (T.Tfsync, b => b.U32(2).U32(1));
        yield return (T.Tclunk, b => b.U32(2));
        yield return (T.Tremove, b => b.U32(1));
        yield return (T.Tflush, b => b.U16(3));
        yield return (T.Tattach, b => b.U32(7).U32(P9Limits.NoFid).Str("u").Str("").U32(1000));
    }

    [Fact]
    public void Mutated_messages_never_escape_the_server()
    {
        var client = new P9TestClient(_fs, msize: 65536);
        var random = new Random(1234);
        var seeds = Seeds().ToArray();
        for (int round = 0; round < 4000; round++)
        {
            if (round % 200 == 0)
            {
                client.Handshake();
                client.Walk(0, 1, "d").Expect(T.Rwalk);
            }
            var (type, body) = seeds[random.Next(seeds.Length)];
            var builder = new P9TestClient.Builder();
            body(builder);
            byte[] payload = builder.ToArray();
            byte[] message = new byte[P9Limits.HeaderSize + payload.Length];
            BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
            message[4] = (byte)type;
            BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(5), (ushort)random.Next(100));
            payload.CopyTo(message, P9Limits.HeaderSize);
            message = Mutate(message, random);

            int capacity = random.Next(4) == 0 ? random.Next(0, 64) : 65536;
            var reply = client.Raw(message, capacity);
            if (reply.Bytes.Length > 0)
            {
                Assert.True(reply.Bytes.Length >= P9Limits.HeaderSize);
                Assert.Equal(reply.Bytes.Length, reply.Size);
                Assert.True((byte)reply.Type % 2 == 1, $"reply type {reply.Type} is not an R-message");
            }
        }
        Assert.Equal("secret", File.ReadAllText(Path.Combine(_parent, "outside")));
        Assert.Equal(["export", "outside"], Directory.GetFileSystemEntries(_parent).Select(p => Path.GetFileName(p)!).Order().ToArray());
    }

    private static byte[] Mutate(byte[] message, Random random)
    {
        switch (random.Next(6))
        {
            case 0: // flip some bits in the body
                for (int i = 0; i < 1 + random.Next(4); i++)
                {
                    int at = random.Next(message.Length);
                    message[at] ^= (byte)(1 << random.Next(8));
                }
                return message;
            case 1: // truncate, keeping a truthful size field
                int keep = random.Next(P9Limits.HeaderSize, message.Length + 1);
                byte[] cut = message[..keep];
                BinaryPrimitives.WriteUInt32LittleEndian(cut, (uint)keep);
                return cut;
            case 2: // lie about the size
                BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)random.Next());
                return message;
            case 3: // random type
                message[4] = (byte)random.Next(256);
                return message;
            case 4: // random bytes, any length
                byte[] noise = new byte[random.Next(0, 64)];
                random.NextBytes(noise);
                return noise;
            default:
                return message;
        }
    }
}

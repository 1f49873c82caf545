using System.Buffers.Binary;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Tests.Protocol;

public class P9CodecTests
{
    [Fact]
    public void Writer_then_reader_round_trips_every_field_type()
    {
        byte[] buffer = new byte[128];
        var writer = new P9Writer(buffer, P9MessageType.Rgetattr, 0x1234);
        writer.WriteByte(0xab);
        writer.WriteUInt16(0xbeef);
        writer.WriteUInt32(0xdeadbeef);
        writer.WriteUInt64(0x0123456789abcdef);
        writer.WriteString("héllo"u8);
        writer.WriteQid(new Qid(Qid.TypeDir, 7, 42));
        int length = writer.Finish();

        var reader = new P9Reader(buffer.AsSpan(0, length));
        Assert.Equal((uint)length, reader.ReadUInt32());
        Assert.Equal((byte)P9MessageType.Rgetattr, reader.ReadByte());
        Assert.Equal(0x1234, reader.ReadUInt16());
        Assert.Equal(0xab, reader.ReadByte());
        Assert.Equal(0xbeef, reader.ReadUInt16());
        Assert.Equal(0xdeadbeefu, reader.ReadUInt32());
        Assert.Equal(0x0123456789abcdefUL, reader.ReadUInt64());
        Assert.True(reader.ReadString(255).SequenceEqual("héllo"u8));
        Assert.Equal(Qid.TypeDir, reader.ReadByte());
        Assert.Equal(7u, reader.ReadUInt32());
        Assert.Equal(42UL, reader.ReadUInt64());
        reader.ReadEnd();
    }

    [Fact]
    public void Little_endian_on_the_wire()
    {
        byte[] buffer = new byte[16];
        var writer = new P9Writer(buffer, P9MessageType.Rclunk, 0x0102);
        writer.WriteUInt32(0x0a0b0c0d);
        writer.Finish();
        Assert.Equal(new byte[] { 11, 0, 0, 0, 121, 0x02, 0x01, 0x0d, 0x0c, 0x0b, 0x0a }, buffer[..11]);
    }

    [Theory]
    [InlineData(new byte[] { })]
    [InlineData(new byte[] { 1 })]
    [InlineData(new byte[] { 1, 2, 3 })]
    public void Short_integer_throws_protocol_exception(byte[] data)
    {
        Assert.Throws<P9ProtocolException>(() => new P9Reader(data).ReadUInt32());
    }

    [Fact]
    public void String_longer_than_the_message_throws()
    {
        byte[] data = [10, 0, (byte)'a', (byte)'b'];
        Assert.Throws<P9ProtocolException>(() => new P9Reader(data).ReadString(255));
    }

    [Fact]
    public void String_over_the_limit_throws_even_if_present()
    {
        byte[] data = new byte[2 + 300];
        BinaryPrimitives.WriteUInt16LittleEndian(data, 300);
        Assert.Throws<P9ProtocolException>(() => new P9Reader(data).ReadString(255));
    }

    [Fact]
    public void A_failed_read_consumes_nothing()
    {
        byte[] data = [5, 0, (byte)'a'];
        var reader = new P9Reader(data);
        try
        {
            reader.ReadString(255);
        }
        catch (P9ProtocolException)
        {
        }
        Assert.Equal(0, reader.Position);
        Assert.Equal(5, reader.ReadUInt16());
    }

    [Fact]
    public void Trailing_bytes_are_rejected()
    {
        byte[] data = [1, 2, 3, 4, 5];
        Assert.Throws<P9ProtocolException>(() =>
        {
            var reader = new P9Reader(data);
            reader.ReadUInt32();
            reader.ReadEnd();
        });
    }

    [Fact]
    public void Writer_overflow_is_a_reply_overflow()
    {
        byte[] buffer = new byte[9];
        Assert.Throws<P9ReplyOverflowException>(() =>
        {
            var writer = new P9Writer(buffer, P9MessageType.Rread, 1);
            writer.WriteUInt32(1);
        });
    }
}

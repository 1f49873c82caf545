using Tmds.Linux;

namespace VirtFs.Virtio9p.Server;

/// <summary>
/// One request/reply exchange as the transport holds it: the request bytes the guest wrote and the room it
/// left for the reply, each possibly scattered over many buffers. The virtio transport adapts a descriptor
/// chain; tests adapt byte arrays. Iovecs point straight at the buffers so data moves with preadv/pwritev.
/// </summary>
public interface IP9Exchange
{
    int RequestLength { get; }
    int ReplyCapacity { get; }
    int CopyFromRequest(int offset, Span<byte> destination);
    int CopyToReply(int offset, ReadOnlySpan<byte> source);
    /// <summary>Returns the number of iovecs filled, or -1 when <paramref name="iovecs"/> is too small.</summary>
    int GetRequestIovecs(int offset, int length, Span<iovec> iovecs);
    int GetReplyIovecs(int offset, int length, Span<iovec> iovecs);
}

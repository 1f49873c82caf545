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
    /// <summary>Returns the number of iovecs filled, or -1 when <paramref name="iovecs"/> is too small. Only
    /// between <see cref="TryBeginDirectAccess"/> and <see cref="EndDirectAccess"/>, and valid only there.</summary>
    int GetRequestIovecs(int offset, int length, Span<iovec> iovecs);
    int GetReplyIovecs(int offset, int length, Span<iovec> iovecs);

    /// <summary>Opens the window for iovecs and the I/O through them (one preadv/pwritev): the transport may
    /// revoke the buffers (the virtio front-end went away) and then answers false; the caller must not do the
    /// I/O. Close it with <see cref="EndDirectAccess"/> in a finally. Buffers that cannot be revoked need not
    /// override these.</summary>
    bool TryBeginDirectAccess() => true;
    void EndDirectAccess() { }
}

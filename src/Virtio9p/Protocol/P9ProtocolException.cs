namespace VirtFs.Virtio9p.Protocol;

/// <summary>The peer sent bytes that do not form a valid 9P message. Our own bugs raise
/// <see cref="InvalidOperationException"/> instead.</summary>
public sealed class P9ProtocolException(string message) : Exception(message);

/// <summary>A reply does not fit the room the guest left for it (or msize). Handlers size what they can
/// (Rread, Rreaddir); for the rest the guest gets Rlerror(EMSGSIZE).</summary>
public sealed class P9ReplyOverflowException(int capacity)
    : InvalidOperationException($"9P reply overflows its {capacity}-byte buffer");

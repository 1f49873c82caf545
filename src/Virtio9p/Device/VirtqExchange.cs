using Tmds.Linux;
using VirtFs.VhostUser;
using VirtFs.Virtio9p.Server;

namespace VirtFs.Virtio9p.Device;

/// <summary>Presents a descriptor chain to the 9P server. One per worker, pointed at each request in turn,
/// so serving a request allocates nothing.</summary>
internal sealed class VirtqExchange : IP9Exchange
{
    private DescriptorChain? _request;

    public void Bind(DescriptorChain request) => _request = request;

    public void Unbind() => _request = null;

    private DescriptorChain Request => _request ?? throw new InvalidOperationException("exchange not bound");

    public int RequestLength => Request.ReadableLength;
    public int ReplyCapacity => Request.WritableLength;
    public int CopyFromRequest(int offset, Span<byte> destination) => Request.CopyFromReadable(offset, destination);
    public int CopyToReply(int offset, ReadOnlySpan<byte> source) => Request.CopyToWritable(offset, source);
    public int GetRequestIovecs(int offset, int length, Span<iovec> iovecs) => Request.GetReadableIovecs(offset, length, iovecs);
    public int GetReplyIovecs(int offset, int length, Span<iovec> iovecs) => Request.GetWritableIovecs(offset, length, iovecs);
    public bool TryBeginDirectAccess() => Request.TryBeginDirectAccess();
    public void EndDirectAccess() => Request.EndDirectAccess();
}

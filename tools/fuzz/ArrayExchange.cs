using System.Runtime.InteropServices;
using Tmds.Linux;
using VirtFs.Virtio9p.Server;

namespace VirtFs.Fuzz;

/// <summary>A 9P exchange over two pinned arrays (one request buffer, one reply buffer), reused for every
/// request so a fuzz run allocates nothing per message.</summary>
internal sealed unsafe class ArrayExchange : IP9Exchange
{
    private readonly byte[] _request;
    private readonly byte[] _reply;

    public ArrayExchange(int capacity)
    {
        _request = GC.AllocateArray<byte>(capacity, pinned: true);
        _reply = GC.AllocateArray<byte>(capacity, pinned: true);
        ReplyCapacity = capacity;
    }

    public int RequestLength { get; private set; }
    public int ReplyCapacity { get; }
    public ReadOnlySpan<byte> Reply => _reply;

    /// <summary>Loads a request (cut at the capacity, as a guest buffer would be).</summary>
    public void Load(ReadOnlySpan<byte> request)
    {
        RequestLength = Math.Min(request.Length, _request.Length);
        request[..RequestLength].CopyTo(_request);
        _reply.AsSpan().Clear();
    }

    public int CopyFromRequest(int offset, Span<byte> destination) => Copy(_request, RequestLength, offset, destination);

    public int CopyToReply(int offset, ReadOnlySpan<byte> source)
    {
        if (offset < 0 || offset > ReplyCapacity) return 0;
        int n = Math.Min(source.Length, ReplyCapacity - offset);
        source[..n].CopyTo(_reply.AsSpan(offset));
        return n;
    }

    public int GetRequestIovecs(int offset, int length, Span<iovec> iovecs) => Iovec(_request, RequestLength, offset, length, iovecs);

    public int GetReplyIovecs(int offset, int length, Span<iovec> iovecs) => Iovec(_reply, ReplyCapacity, offset, length, iovecs);

    private static int Copy(byte[] from, int valid, int offset, Span<byte> destination)
    {
        if (offset < 0 || offset > valid) return 0;
        int n = Math.Min(destination.Length, valid - offset);
        from.AsSpan(offset, n).CopyTo(destination);
        return n;
    }

    private static int Iovec(byte[] buffer, int valid, int offset, int length, Span<iovec> iovecs)
    {
        if (offset < 0 || offset > valid || length <= 0) return 0;
        if (iovecs.Length == 0) return -1;
        // SAFETY: the array is pinned for its lifetime (GC.AllocateArray pinned: true) and offset..offset+n is inside it.
        iovecs[0].iov_base = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0) + offset;
        iovecs[0].iov_len = Math.Min(length, valid - offset);
        return 1;
    }
}

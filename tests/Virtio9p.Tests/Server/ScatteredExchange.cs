using System.Runtime.InteropServices;
using Tmds.Linux;
using VirtFs.Virtio9p.Server;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>
/// A request and reply area each split into several pinned buffers at chosen points, as a virtio chain
/// is (the Linux client puts the Rread header in one descriptor and the data in guest pages).
/// </summary>
internal sealed class ScatteredExchange : IP9Exchange, IDisposable
{
    private readonly List<(byte[] Buffer, GCHandle Pin)> _request = [];
    private readonly List<(byte[] Buffer, GCHandle Pin)> _reply = [];

    public ScatteredExchange(byte[] request, int replyCapacity, int[]? requestSplits = null, int[]? replySplits = null)
    {
        Split(request, requestSplits, _request);
        Split(new byte[replyCapacity], replySplits, _reply);
        RequestLength = request.Length;
        ReplyCapacity = replyCapacity;
    }

    private static void Split(byte[] whole, int[]? splits, List<(byte[], GCHandle)> into)
    {
        int start = 0;
        foreach (int split in (splits ?? []).Append(whole.Length))
        {
            int end = Math.Min(split, whole.Length);
            byte[] part = whole[start..end];
            into.Add((part, GCHandle.Alloc(part, GCHandleType.Pinned)));
            start = end;
        }
    }

    public int RequestLength { get; }
    public int ReplyCapacity { get; }

    public byte[] Reply => _reply.SelectMany(p => p.Buffer).ToArray();

    /// <summary>As a virtio transport whose front-end went away: direct access to the buffers is refused.</summary>
    public bool Revoked { get; init; }

    public bool TryBeginDirectAccess() => !Revoked;
    public void EndDirectAccess() { }

    /// <summary>The front-end goes away right after the header was read: every later copy gets nothing, as the
    /// virtio transport's closed access gate answers.</summary>
    public bool GoneAfterHeader { get; init; }

    private bool _headerRead;

    public int CopyFromRequest(int offset, Span<byte> destination)
    {
        if (GoneAfterHeader && _headerRead) return 0;
        _headerRead = true;
        return Copy(_request, offset, destination, default, false);
    }
    public int CopyToReply(int offset, ReadOnlySpan<byte> source) => Copy(_reply, offset, default, source, true);
    public int GetRequestIovecs(int offset, int length, Span<iovec> iovecs) => Iovecs(_request, offset, length, iovecs);
    public int GetReplyIovecs(int offset, int length, Span<iovec> iovecs) => Iovecs(_reply, offset, length, iovecs);

    private static int Copy(List<(byte[] Buffer, GCHandle Pin)> parts, int offset, Span<byte> dest, ReadOnlySpan<byte> src, bool toParts)
    {
        int length = toParts ? src.Length : dest.Length;
        int done = 0;
        foreach ((byte[] buffer, _) in parts)
        {
            if (done == length) break;
            if (offset >= buffer.Length) { offset -= buffer.Length; continue; }
            int n = Math.Min(buffer.Length - offset, length - done);
            if (toParts) src.Slice(done, n).CopyTo(buffer.AsSpan(offset));
            else buffer.AsSpan(offset, n).CopyTo(dest[done..]);
            done += n;
            offset = 0;
        }
        return done;
    }

    private static unsafe int Iovecs(List<(byte[] Buffer, GCHandle Pin)> parts, int offset, int length, Span<iovec> iovecs)
    {
        int used = 0;
        foreach ((byte[] buffer, GCHandle pin) in parts)
        {
            if (length == 0) break;
            if (offset >= buffer.Length) { offset -= buffer.Length; continue; }
            if (used == iovecs.Length) return -1;
            int n = Math.Min(buffer.Length - offset, length);
            iovecs[used].iov_base = (byte*)pin.AddrOfPinnedObject() + offset;
            iovecs[used].iov_len = n;
            used++;
            length -= n;
            offset = 0;
        }
        return used;
    }

    public void Dispose()
    {
        foreach ((_, GCHandle pin) in _request.Concat(_reply)) pin.Free();
    }
}

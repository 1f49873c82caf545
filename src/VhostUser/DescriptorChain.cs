using Tmds.Linux;

namespace VirtFs.VhostUser;

/// <summary>
/// One available descriptor chain, already validated and translated into host pointers into guest memory.
/// Pooled: a device must not touch it after <see cref="Complete"/>.
/// </summary>
public sealed class DescriptorChain
{
    /// <summary>A contiguous piece of a chain in host memory (a descriptor, or part of one split at a region edge).</summary>
    internal struct Segment
    {
        public nint Address;
        public int Length;
    }

    private Segment[] _readable = new Segment[8];
    private Segment[] _writable = new Segment[8];
    private int _readableCount;
    private int _writableCount;
    private int _state; // 0 = free (in pool), 1 = owned by device, 2 = completing
    private bool _direct; // inside TryBeginDirectAccess (only the thread serving the request touches it)

    internal IChainCompleter? Completer;
    internal GuestMemory? Memory;
    internal ushort Head;
    internal int Epoch;

    /// <summary>Total device-readable bytes of the chain (driver -> device).</summary>
    public int ReadableLength { get; private set; }

    /// <summary>Total device-writable bytes of the chain (device -> driver).</summary>
    public int WritableLength { get; private set; }

    /// <summary>Index of the queue this chain came from.</summary>
    public int QueueIndex { get; internal set; }

    /// <summary>Head descriptor index (for logs).</summary>
    public int DescriptorIndex => Head;

    /// <summary>True once the front-end that sent this request has gone away: nothing the device does with the
    /// request reaches guest memory any more (copies return 0, direct access is refused, the completion is
    /// dropped), so the device may as well skip the work.</summary>
    public bool FrontEndGone => Memory?.Gate.IsClosed == true;

    internal int ReadableSegmentCount => _readableCount;
    internal int WritableSegmentCount => _writableCount;

    /// <summary>Segments a pooled request keeps room for: a full 512000-byte zero-copy message is ~130 pages, so
    /// the Linux client never needs more; a chain of up to <c>SplitRing.MaxSegments</c> grows the arrays for its
    /// own lifetime only, and the pool never keeps more than queue size x this many segments.</summary>
    internal const int PooledSegmentCapacity = 256;

    internal int SegmentCapacity => _readable.Length + _writable.Length;

    internal void Reset()
    {
        if (_readable.Length > PooledSegmentCapacity)
        {
            _readable = new Segment[8];
        }
        if (_writable.Length > PooledSegmentCapacity)
        {
            _writable = new Segment[8];
        }
        _readableCount = 0;
        _writableCount = 0;
        ReadableLength = 0;
        WritableLength = 0;
        Completer = null;
        Memory = null;
        Head = 0;
        _direct = false;
    }

    /// <summary>Appends a segment; the caller has checked the running totals against the 2^31 cap.</summary>
    internal void AddSegment(nint address, int length, bool writable)
    {
        if (writable)
        {
            Append(ref _writable, ref _writableCount, address, length);
            WritableLength += length;
        }
        else
        {
            Append(ref _readable, ref _readableCount, address, length);
            ReadableLength += length;
        }
    }

    private static void Append(ref Segment[] array, ref int count, nint address, int length)
    {
        if (count == array.Length)
        {
            // Grows once per pooled object; steady state allocates nothing.
            Array.Resize(ref array, array.Length * 2);
        }
        array[count++] = new Segment { Address = address, Length = length };
    }

    internal void MarkOwnedByDevice() => Volatile.Write(ref _state, 1);

    internal void MarkFree() => Volatile.Write(ref _state, 0);

    /// <summary>Gathers readable bytes starting at <paramref name="offset"/>; returns the count copied (short at the end).</summary>
    public int CopyFromReadable(int offset, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        return Copy(_readable, _readableCount, offset, destination.Length, destination, default, toGuest: false);
    }

    /// <summary>Scatters bytes into the writable part starting at <paramref name="offset"/>; returns the count copied (short at the end).</summary>
    public int CopyToWritable(int offset, ReadOnlySpan<byte> source)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        return Copy(_writable, _writableCount, offset, source.Length, default, source, toGuest: true);
    }

    private int Copy(Segment[] segments, int count, int offset, int length, Span<byte> dest, ReadOnlySpan<byte> src, bool toGuest)
    {
        EnsureOwned();
        // Inside a direct access the gate is already held; otherwise hold it for this copy. A request built
        // without a snapshot (ring tests) has no gate.
        GuestAccessGate? gate = _direct ? null : Memory?.Gate;
        if (gate is not null && !gate.TryEnter())
        {
            return 0; // the front-end is gone: its memory is not ours to touch
        }
        try
        {
            return CopyInside(segments, count, offset, length, dest, src, toGuest);
        }
        finally
        {
            gate?.Exit();
        }
    }

    private static unsafe int CopyInside(Segment[] segments, int count, int offset, int length, Span<byte> dest, ReadOnlySpan<byte> src, bool toGuest)
    {
        int done = 0;
        int skip = offset;
        for (int i = 0; i < count && done < length; i++)
        {
            Segment s = segments[i];
            if (skip >= s.Length)
            {
                skip -= s.Length;
                continue;
            }
            int n = Math.Min(s.Length - skip, length - done);
            // SAFETY: the segment lies inside a mapped guest region (checked when the chain was parsed); the
            // mapping is kept alive by this request's GuestMemory lease until Complete, and the gate held by Copy
            // keeps a disconnect from unmapping it meanwhile; [skip, skip+n) is inside it.
            var guest = new Span<byte>((byte*)s.Address + skip, n);
            if (toGuest)
            {
                src.Slice(done, n).CopyTo(guest);
            }
            else
            {
                guest.CopyTo(dest.Slice(done, n));
            }
            done += n;
            skip = 0;
        }
        return done;
    }

    /// <summary>
    /// Opens direct access to the chain's buffers: iovecs may be taken and used (preadv/pwritev) until
    /// <see cref="EndDirectAccess"/>, which must follow on the same thread (try/finally). False when the front-end
    /// is gone: the caller must then not do the I/O. Keep the window to the I/O itself: a disconnect waits for it.
    /// </summary>
    public bool TryBeginDirectAccess()
    {
        EnsureOwned();
        if (_direct)
        {
            throw new InvalidOperationException("direct access already open");
        }
        if (Memory is { } memory && !memory.Gate.TryEnter())
        {
            return false;
        }
        _direct = true;
        return true;
    }

    public void EndDirectAccess()
    {
        if (!_direct)
        {
            throw new InvalidOperationException("EndDirectAccess without TryBeginDirectAccess");
        }
        _direct = false;
        Memory?.Gate.Exit();
    }

    /// <summary>
    /// Fills <paramref name="iovecs"/> with pointers straight into guest memory for bytes [offset, offset+length) of
    /// the readable part (clamped at its end), split at descriptor/region edges. Returns the number used, or -1 if
    /// <paramref name="iovecs"/> is too small. Only inside <see cref="TryBeginDirectAccess"/>, and valid until
    /// <see cref="EndDirectAccess"/>.
    /// </summary>
    public int GetReadableIovecs(int offset, int length, Span<iovec> iovecs) =>
        GetIovecs(_readable, _readableCount, offset, length, iovecs);

    /// <summary>As <see cref="GetReadableIovecs"/>, for the writable part.</summary>
    public int GetWritableIovecs(int offset, int length, Span<iovec> iovecs) =>
        GetIovecs(_writable, _writableCount, offset, length, iovecs);

    private unsafe int GetIovecs(Segment[] segments, int count, int offset, int length, Span<iovec> iovecs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        EnsureOwned();
        if (!_direct)
        {
            throw new InvalidOperationException("iovecs into guest memory outside TryBeginDirectAccess");
        }
        int used = 0;
        int skip = offset;
        int remaining = length;
        for (int i = 0; i < count && remaining > 0; i++)
        {
            Segment s = segments[i];
            if (skip >= s.Length)
            {
                skip -= s.Length;
                continue;
            }
            if (used == iovecs.Length)
            {
                return -1;
            }
            int n = Math.Min(s.Length - skip, remaining);
            // SAFETY: pointer arithmetic only; the address stays inside the validated segment (skip < s.Length).
            iovecs[used].iov_base = (byte*)s.Address + skip;
            iovecs[used].iov_len = n;
            used++;
            remaining -= n;
            skip = 0;
        }
        return used;
    }

    /// <summary>
    /// Returns the chain to the driver with <paramref name="bytesWritten"/> as the used length, and notifies the
    /// guest if it asked for it (EVENT_IDX aware). Thread-safe; call exactly once.
    /// </summary>
    public void Complete(int bytesWritten)
    {
        if (bytesWritten < 0 || bytesWritten > WritableLength)
        {
            throw new ArgumentOutOfRangeException(nameof(bytesWritten), bytesWritten, "must be within [0, WritableLength]");
        }
        if (_direct)
        {
            throw new InvalidOperationException("DescriptorChain completed inside a direct access");
        }
        if (Interlocked.CompareExchange(ref _state, 2, 1) != 1)
        {
            throw new InvalidOperationException("DescriptorChain completed twice or used after completion");
        }
        IChainCompleter? completer = Completer;
        if (completer is null)
        {
            throw new InvalidOperationException("DescriptorChain has no owning queue");
        }
        completer.Complete(this, (uint)bytesWritten);
    }

    private void EnsureOwned()
    {
        if (Volatile.Read(ref _state) != 1)
        {
            throw new InvalidOperationException("DescriptorChain used after Complete");
        }
    }
}

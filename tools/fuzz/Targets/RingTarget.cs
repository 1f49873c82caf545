using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.VhostUser;
using static Tmds.Linux.LibC;

namespace VirtFs.Fuzz.Targets;

/// <summary>
/// The descriptor-chain walker (<see cref="SplitRing"/>) over guest memory the input fills byte for byte. Guest
/// memory is two 32 KiB memfd regions, back to back in guest-physical space (0x0 and 0x8000) but far apart in the
/// front-end's address space, so chains may cross a region edge. The split ring of 1..256 entries sits at fixed
/// places: descriptor table at 0x0, avail ring at 0x1000, used ring at 0x2000.
///
/// Input: byte 0 = log2 of the queue size (mod 9), byte 1 = bit 0 EVENT_IDX, bit 1 INDIRECT_DESC negotiated; the
/// rest is copied to guest-physical 0 onwards (the remainder of memory is zero). The walker pops every chain the
/// avail ring offers, as the queue thread does, copies each chain's readable bytes out, fills its writable part,
/// and adds it to the used ring, until the ring is empty or reports a violation.
///
/// Findings: an exception; a segment (iovec) outside the mapped regions; iovec lengths that do not add up to
/// the chain's readable/writable lengths; more chains popped than the avail index allows.
/// </summary>
internal sealed unsafe class RingTarget : IFuzzTarget
{
    private const ulong RegionSize = 0x8000;
    private const ulong UserA = 0x7f00_0000_0000, UserB = 0x7f00_1000_0000;
    private const ulong DescGpa = 0x0, AvailGpa = 0x1000, UsedGpa = 0x2000;
    private readonly GuestMemory _memory;
    private readonly nint _hostA, _hostB;
    private readonly DescriptorChain _request = new();
    private readonly byte[] _scratch = new byte[1 << 20];
    private readonly iovec[] _iovecs = GC.AllocateArray<iovec>(SplitRing.MaxSegments, pinned: true);

    public RingTarget()
    {
        var regions = new List<MappedRegion>
        {
            MapRegion(0, UserA),
            MapRegion(RegionSize, UserB),
        };
        _memory = new GuestMemory(regions);
        regions.ForEach(r => r.Dispose()); // the snapshot keeps them mapped
        if (!_memory.TryTranslateGuest(new GuestAddress(0), RegionSize, out _hostA, out _)
            || !_memory.TryTranslateGuest(new GuestAddress(RegionSize), RegionSize, out _hostB, out _))
        {
            throw new InvalidOperationException("fixture regions do not translate");
        }
    }

    private static MappedRegion MapRegion(ulong gpa, ulong user)
    {
        byte* name = stackalloc byte[] { (byte)'r', (byte)'i', (byte)'n', (byte)'g', 0 };
        int fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (long)RegionSize) != 0)
        {
            throw new InvalidOperationException($"memfd: errno {errno}");
        }
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        return MappedRegion.Map(handle, new MemoryRegionDescription(gpa, RegionSize, user, 0));
    }

    public int MaxInputLength => 2 + 2 * (int)RegionSize;

    public void Execute(ReadOnlySpan<byte> input)
    {
        if (input.Length < 2)
        {
            return;
        }
        int size = 1 << (input[0] % 9);
        bool eventIdx = (input[1] & 1) != 0, indirect = (input[1] & 2) != 0;
        input = input[2..];
        var memA = new Span<byte>((void*)_hostA, (int)RegionSize);
        var memB = new Span<byte>((void*)_hostB, (int)RegionSize);
        memA.Clear();
        memB.Clear();
        input[..Math.Min(input.Length, memA.Length)].CopyTo(memA);
        if (input.Length > memA.Length)
        {
            input[memA.Length..Math.Min(input.Length, 2 * memA.Length)].CopyTo(memB);
        }

        var address = new VringAddress(0, 0, UserA + DescGpa, UserA + UsedGpa, UserA + AvailGpa, 0);
        QueueError e = SplitRing.TryCreate(_memory, address, size, 0, eventIdx, indirect, null, out SplitRing? queue);
        if (e != QueueError.None)
        {
            throw new FuzzFindingException($"fixture ring of {size} refused: {e}");
        }
        for (int popped = 0; ; popped++)
        {
            _request.Reset();
            e = queue!.TryPop(_request, out bool got);
            if (e != QueueError.None || !got)
            {
                break;
            }
            if (popped >= size)
            {
                throw new FuzzFindingException($"popped {popped + 1} chains from a ring of {size} without a refill");
            }
            _request.MarkOwnedByDevice();
            CheckSegments(readable: true, _request.ReadableLength);
            CheckSegments(readable: false, _request.WritableLength);
            int read = _request.CopyFromReadable(0, _scratch.AsSpan(0, Math.Min(_scratch.Length, _request.ReadableLength)));
            int written = _request.CopyToWritable(0, _scratch.AsSpan(0, Math.Min(read, _request.WritableLength)));
            queue.AddUsed(_request.Head, (uint)written);
            queue.ShouldNotify();
            _request.MarkFree();
        }
        queue!.EnableNotification();
    }

    private void CheckSegments(bool readable, int expected)
    {
        // Iovecs are only handed out inside a direct-access window (the connection's guest-memory gate).
        if (!_request.TryBeginDirectAccess())
        {
            throw new FuzzFindingException("direct access refused while the memory is mapped");
        }
        int n;
        try
        {
            n = readable ? _request.GetReadableIovecs(0, int.MaxValue, _iovecs) : _request.GetWritableIovecs(0, int.MaxValue, _iovecs);
        }
        finally
        {
            _request.EndDirectAccess();
        }
        if (n < 0)
        {
            throw new FuzzFindingException($"a chain has more segments than {SplitRing.MaxSegments}");
        }
        long total = 0;
        for (int i = 0; i < n; i++)
        {
            nint start = (nint)_iovecs[i].iov_base;
            long length = (long)(ulong)_iovecs[i].iov_len;
            if (!Inside(start, length, _hostA) && !Inside(start, length, _hostB))
            {
                throw new FuzzFindingException($"segment 0x{start:x}+{length} is outside guest memory");
            }
            total += length;
        }
        if (total != expected)
        {
            throw new FuzzFindingException($"{(readable ? "readable" : "writable")} segments add up to {total}, chain says {expected}");
        }
    }

    private static bool Inside(nint start, long length, nint region) =>
        start >= region && length >= 0 && (ulong)(start - region) + (ulong)length <= RegionSize;

    public void Dispose() => _memory.Release();
}

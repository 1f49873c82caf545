using System.Buffers.Binary;
using System.Diagnostics;
using VirtFs.DeviceBench.Interop;
using VirtFs.VhostUser;
using VirtFs.VhostUser.Tests;

namespace VirtFs.DeviceBench;

/// <summary>What one benchmark row sends.</summary>
internal enum Workload
{
    Read,
    Write,
    Getattr,
    WalkClunk,
    /// <summary>A Linux lookup (v9fs_vfs_lookup): Twalk of one name, Tgetattr on the new fid, Tclunk.</summary>
    Lookup,
}

/// <summary>One measured row: the backend's side of a closed loop at a fixed queue depth.
/// <paramref name="GcPauseSeconds"/>: the time the whole process (server and driver) spent paused for garbage
/// collections during the row, what the allocations cost beyond allocating; rows that allocate nothing per request
/// show the baseline.</summary>
internal readonly record struct RingResult(long Requests, double Seconds, double ServerCpuSeconds, long ServerAllocatedBytes,
    double GcPauseSeconds);

/// <summary>
/// Plays the Linux 9p client on a split virtqueue laid out by <see cref="MockDriver"/>: each in-flight request has
/// a fixed slot (head descriptor = slot, tag = slot) whose indirect table describes the request the way
/// trans_virtio does (header in one descriptor, zero-copy payload as one descriptor per 4 KiB page). A closed loop
/// keeps <c>depth</c> requests in flight, kicks only when the backend's avail_event asks (EVENT_IDX), and sleeps on
/// the call eventfd only when no completion is waiting.
/// </summary>
internal sealed unsafe class RingClient
{
    public const int PageSize = 4096;
    public const int MaxPayload = 512 * 1024;
    private const int SlotSize = 3 * PageSize;  // request area, reply area, indirect table
    private const int RequestArea = 0, ReplyArea = PageSize, TableArea = 2 * PageSize;

    private const byte Rlerror = 7;
    public const byte Tlopen = 12, Tgetattr = 24, Tversion = 100, Tattach = 104, Twalk = 110, Tread = 116,
        Twrite = 118, Tclunk = 120;

    private readonly GuestRam _ram;
    private readonly MockDriver _driver;
    private readonly int _kick;
    private readonly int _call;
    private readonly int _maxDepth;
    private readonly ulong _slotsGpa;
    private readonly ulong _payloadGpa;
    private ushort _lastUsed;
    private ushort _published;
    private readonly bool[] _walkNext; // WalkClunk: true when the slot's next message is the walk
    private readonly int[] _lookupStep; // Lookup: the slot's next message, 0 walk, 1 getattr, 2 clunk

    public RingClient(GuestRam ram, MockDriver driver, int kick, int call, int maxDepth)
    {
        _ram = ram;
        _driver = driver;
        _kick = kick;
        _call = call;
        _maxDepth = maxDepth;
        _slotsGpa = driver.DataGpa;
        _payloadGpa = _slotsGpa + (ulong)(maxDepth + 1) * SlotSize;
        _walkNext = new bool[maxDepth + 1];
        _lookupStep = new int[maxDepth + 1];
        if (_payloadGpa + MaxPayload > ram.GuestPhysAddr + ram.Size)
        {
            throw new InvalidOperationException("guest RAM too small for the slots and the payload area");
        }
    }

    /// <summary>Guest RAM needed for <paramref name="maxDepth"/> slots with a queue of <paramref name="queueSize"/>.</summary>
    public static ulong RamSize(int queueSize, int maxDepth) =>
        (ulong)(32 * queueSize + 4 * PageSize + (maxDepth + 1) * SlotSize + MaxPayload + PageSize) + (1UL << 20);

    private ulong Slot(int slot) => _slotsGpa + (ulong)slot * SlotSize;

    /// <summary>Sends one message on slot <paramref name="slot"/> and waits for its reply (set-up steps).
    /// Returns the reply bytes' type; throws on Rlerror.</summary>
    public byte Call(int slot, ReadOnlySpan<byte> message, string what)
    {
        message.CopyTo(_ram.Span(Slot(slot) + RequestArea, message.Length));
        Span<(ulong, uint, bool)> table = stackalloc (ulong, uint, bool)[2];
        table[0] = (Slot(slot) + RequestArea, (uint)message.Length, false);
        table[1] = (Slot(slot) + ReplyArea, PageSize, true);
        WriteTable(slot, table);
        Publish((ushort)slot);
        KickIfAsked(1);
        int done = 0;
        WaitForCompletions(ref done, 1, null);
        byte type = _ram.Span(Slot(slot) + ReplyArea + 4, 1)[0];
        if (type == Rlerror)
        {
            int errno = BinaryPrimitives.ReadInt32LittleEndian(_ram.Span(Slot(slot) + ReplyArea + 7, 4));
            throw new InvalidOperationException($"{what}: Rlerror errno {errno}");
        }
        return type;
    }

    /// <summary>Runs <paramref name="workload"/> at <paramref name="depth"/> for a warm-up, then for at least
    /// <paramref name="seconds"/>, and measures the backend's share of time, CPU and allocations.</summary>
    public RingResult Run(Workload workload, int depth, int size, uint fid, uint rootFid, long fileSize, double seconds)
    {
        if (depth < 1 || depth > _maxDepth)
        {
            throw new ArgumentOutOfRangeException(nameof(depth));
        }
        long next = 0;
        for (int s = 0; s < depth; s++)
        {
            _walkNext[s] = true;
            _lookupStep[s] = 0;
            Prepare(workload, s, size, fid, rootFid, ref next, fileSize);
            Publish((ushort)s);
        }
        KickIfAsked((ushort)depth);
        int warm = Math.Max(256, depth * 8);
        int completed = 0;
        Loop(workload, depth, size, fid, rootFid, fileSize, ref next, ref completed, warm, double.MaxValue);

        long wall0 = Stopwatch.GetTimestamp();
        long process0 = Clock.CpuNanoseconds(Clock.ProcessCpuTime);
        long thread0 = Clock.CpuNanoseconds(Clock.ThreadCpuTime);
        long allocatedAll0 = GC.GetTotalAllocatedBytes(precise: true);
        long allocatedMine0 = GC.GetAllocatedBytesForCurrentThread();
        TimeSpan pause0 = GC.GetTotalPauseDuration();
        int counted = 0;
        Loop(workload, depth, size, fid, rootFid, fileSize, ref next, ref counted, int.MaxValue, seconds);
        long wall1 = Stopwatch.GetTimestamp();
        long allocatedMine1 = GC.GetAllocatedBytesForCurrentThread();
        TimeSpan pause1 = GC.GetTotalPauseDuration();
        long allocatedAll1 = GC.GetTotalAllocatedBytes(precise: true);
        long thread1 = Clock.CpuNanoseconds(Clock.ThreadCpuTime);
        long process1 = Clock.CpuNanoseconds(Clock.ProcessCpuTime);

        // Drain what is still in flight (not counted) so the next row starts with an empty ring.
        int drained = 0;
        WaitForCompletions(ref drained, depth, null);
        if (workload is Workload.WalkClunk or Workload.Lookup)
        {
            Span<byte> clunk = stackalloc byte[11];
            for (int s = 0; s < depth; s++)
            {
                if (workload == Workload.WalkClunk ? !_walkNext[s] : _lookupStep[s] != 0)
                {
                    Header(clunk, 11, Tclunk, (ushort)s);
                    BinaryPrimitives.WriteUInt32LittleEndian(clunk[7..], 1000 + (uint)s);
                    Call(s, clunk, "Tclunk after the walk row");
                }
            }
        }
        double elapsed = Stopwatch.GetElapsedTime(wall0, wall1).TotalSeconds;
        double serverCpu = ((process1 - process0) - (thread1 - thread0)) / 1e9;
        long serverAllocated = (allocatedAll1 - allocatedAll0) - (allocatedMine1 - allocatedMine0);
        return new RingResult(counted, elapsed, serverCpu, serverAllocated, (pause1 - pause0).TotalSeconds);
    }

    /// <summary>Completes and re-issues requests until <paramref name="limit"/> completions or the time is up
    /// (then it stops re-issuing; the caller drains).</summary>
    private void Loop(Workload workload, int depth, int size, uint fid, uint rootFid, long fileSize, ref long next,
        ref int completed, int limit, double seconds)
    {
        long start = Stopwatch.GetTimestamp();
        long deadline = seconds == double.MaxValue ? long.MaxValue : start + (long)(seconds * Stopwatch.Frequency);
        while (completed < limit)
        {
            ushort used = WaitUsed();
            ushort issued = 0;
            while (_lastUsed != used)
            {
                (uint id, uint _) = _driver.Used(_lastUsed);
                _lastUsed++;
                completed++;
                int slot = (int)id;
                CheckReply(workload, slot);
                Prepare(workload, slot, size, fid, rootFid, ref next, fileSize);
                Publish((ushort)slot);
                issued++;
            }
            KickIfAsked(issued);
            if (Stopwatch.GetTimestamp() >= deadline)
            {
                break;
            }
        }
    }

    private void CheckReply(Workload workload, int slot)
    {
        byte type = _ram.Span(Slot(slot) + ReplyArea + 4, 1)[0];
        if (type == Rlerror)
        {
            int errno = BinaryPrimitives.ReadInt32LittleEndian(_ram.Span(Slot(slot) + ReplyArea + 7, 4));
            throw new InvalidOperationException($"{workload} on slot {slot}: Rlerror errno {errno}");
        }
    }

    /// <summary>Writes slot <paramref name="slot"/>'s next request and its indirect table.</summary>
    private void Prepare(Workload workload, int slot, int size, uint fid, uint rootFid, ref long next, long fileSize)
    {
        Span<byte> request = _ram.Span(Slot(slot) + RequestArea, 64);
        ulong requestGpa = Slot(slot) + RequestArea, replyGpa = Slot(slot) + ReplyArea;
        ushort tag = (ushort)slot;
        Span<(ulong, uint, bool)> table = stackalloc (ulong, uint, bool)[2 + MaxPayload / PageSize];
        int n = 0;
        switch (workload)
        {
            case Workload.Read:
            case Workload.Write:
            {
                long offset = next * size % Math.Max(size, fileSize - size);
                next++;
                bool write = workload == Workload.Write;
                int length = Header(request, 23 + (write ? size : 0), write ? Twrite : Tread, tag);
                BinaryPrimitives.WriteUInt32LittleEndian(request[length..], fid);
                BinaryPrimitives.WriteUInt64LittleEndian(request[(length + 4)..], (ulong)offset);
                BinaryPrimitives.WriteUInt32LittleEndian(request[(length + 12)..], (uint)size);
                table[n++] = (requestGpa, 23, false);
                if (!write)
                {
                    table[n++] = (replyGpa, 11, true);
                }
                for (int page = 0; page < size / PageSize; page++)
                {
                    table[n++] = (_payloadGpa + (ulong)page * PageSize, PageSize, !write);
                }
                if (write)
                {
                    table[n++] = (replyGpa, 11, true);
                }
                break;
            }
            case Workload.Getattr:
            {
                int length = Header(request, 19, Tgetattr, tag);
                BinaryPrimitives.WriteUInt32LittleEndian(request[length..], fid);
                BinaryPrimitives.WriteUInt64LittleEndian(request[(length + 4)..], 0x3fff); // P9_STATS_ALL
                table[n++] = (requestGpa, 19, false);
                table[n++] = (replyGpa, PageSize, true);
                break;
            }
            case Workload.WalkClunk:
            {
                uint newFid = 1000 + (uint)slot;
                if (_walkNext[slot])
                {
                    table[n++] = (requestGpa, WalkOneName(request, tag, rootFid, newFid), false);
                }
                else
                {
                    int length = Header(request, 11, Tclunk, tag);
                    BinaryPrimitives.WriteUInt32LittleEndian(request[length..], newFid);
                    table[n++] = (requestGpa, 11, false);
                }
                _walkNext[slot] = !_walkNext[slot];
                table[n++] = (replyGpa, PageSize, true);
                break;
            }
            case Workload.Lookup:
            {
                uint newFid = 1000 + (uint)slot;
                int step = _lookupStep[slot];
                if (step == 0)
                {
                    table[n++] = (requestGpa, WalkOneName(request, tag, rootFid, newFid), false);
                }
                else if (step == 1)
                {
                    int length = Header(request, 19, Tgetattr, tag);
                    BinaryPrimitives.WriteUInt32LittleEndian(request[length..], newFid);
                    BinaryPrimitives.WriteUInt64LittleEndian(request[(length + 4)..], 0x7ff); // P9_STATS_BASIC, as lookup asks
                    table[n++] = (requestGpa, 19, false);
                }
                else
                {
                    int length = Header(request, 11, Tclunk, tag);
                    BinaryPrimitives.WriteUInt32LittleEndian(request[length..], newFid);
                    table[n++] = (requestGpa, 11, false);
                }
                _lookupStep[slot] = (step + 1) % 3;
                table[n++] = (replyGpa, PageSize, true);
                break;
            }
        }
        WriteTable(slot, table[..n]);
    }

    /// <summary>Twalk of the one name "data" from <paramref name="rootFid"/> to <paramref name="newFid"/>; returns
    /// the request's size.</summary>
    private static uint WalkOneName(Span<byte> request, ushort tag, uint rootFid, uint newFid)
    {
        int length = Header(request, 7 + 10 + 2 + 4, Twalk, tag);
        BinaryPrimitives.WriteUInt32LittleEndian(request[length..], rootFid);
        BinaryPrimitives.WriteUInt32LittleEndian(request[(length + 4)..], newFid);
        BinaryPrimitives.WriteUInt16LittleEndian(request[(length + 8)..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(request[(length + 10)..], 4);
        "data"u8.CopyTo(request[(length + 12)..]);
        return 7 + 10 + 2 + 4u;
    }

    private static int Header(Span<byte> message, int size, byte type, ushort tag)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)size);
        message[4] = type;
        BinaryPrimitives.WriteUInt16LittleEndian(message[5..], tag);
        return 7;
    }

    private void WriteTable(int slot, ReadOnlySpan<(ulong Addr, uint Len, bool Write)> buffers)
    {
        ulong tableGpa = Slot(slot) + TableArea;
        for (int i = 0; i < buffers.Length; i++)
        {
            bool last = i == buffers.Length - 1;
            ushort flags = (ushort)((buffers[i].Write ? SplitRing.DescFlagWrite : 0) | (last ? 0 : SplitRing.DescFlagNext));
            _driver.WriteDescriptor(tableGpa, i, buffers[i].Addr, buffers[i].Len, flags, (ushort)(last ? 0 : i + 1));
        }
        _driver.WriteDescriptor(_driver.DescGpa, slot, tableGpa, (uint)(16 * buffers.Length), SplitRing.DescFlagIndirect, 0);
    }

    private void Publish(ushort head)
    {
        _driver.Publish(head);
        _published++;
    }

    /// <summary>virtio 2.7.10 (vring_need_event): kick only if avail_event lies among the entries just published.</summary>
    private void KickIfAsked(ushort added)
    {
        if (added == 0)
        {
            return;
        }
        Thread.MemoryBarrier();
        ushort newIdx = _published, oldIdx = (ushort)(_published - added);
        ushort availEvent = _driver.AvailEvent;
        if ((ushort)(newIdx - availEvent - 1) < (ushort)(newIdx - oldIdx))
        {
            TestFrontEnd.Kick(_kick);
        }
    }

    /// <summary>Returns the used index once it moved past what we consumed, asking for an interrupt
    /// (used_event) and sleeping on the call fd only when nothing is there.</summary>
    private ushort WaitUsed()
    {
        while (true)
        {
            ushort used = _driver.UsedIdx;
            if (used != _lastUsed)
            {
                return used;
            }
            _driver.SetUsedEvent(_lastUsed);
            Thread.MemoryBarrier();
            used = _driver.UsedIdx;
            if (used != _lastUsed)
            {
                return used;
            }
            if (!TestFrontEnd.WaitSignalled(_call, 20000))
            {
                throw new TimeoutException($"no completion within 20 s ({_published - _lastUsed} in flight)");
            }
        }
    }

    private void WaitForCompletions(ref int done, int count, Workload? workload)
    {
        while (done < count)
        {
            ushort used = WaitUsed();
            while (_lastUsed != used)
            {
                _lastUsed++;
                done++;
            }
        }
    }
}

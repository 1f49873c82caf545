using System.Collections.Concurrent;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

/// <summary>
/// Turns (device, inode) into a qid.path that stays unique when the export spans several host filesystems,
/// whose inode numbers collide (QEMU's multidevs=remap). Each device seen gets a 15-bit prefix in the top
/// bits; the first device gets 0, so on a single-filesystem export qid.path is the inode number.
/// Inodes too large for the remaining 48 bits, or devices beyond the prefix space, get numbers from a
/// separate range marked by the top bit.
/// </summary>
internal sealed class QidMapper(int maxOverflowEntries = SessionLimits.DefaultMaxQidOverflowEntries)
{
    private const int InodeBits = 48;
    private const ulong InodeMask = (1UL << InodeBits) - 1;
    private const int MaxPrefixes = 1 << 15;
    private const ulong OverflowFlag = 1UL << 63;

    private readonly ConcurrentDictionary<ulong, ulong> _devicePrefixes = new();
    private readonly ConcurrentDictionary<(ulong Device, ulong Inode), ulong> _overflow = new();
    private long _nextOverflow;
    private int _overflowCount;
    private readonly Lock _prefixLock = new();

    public ulong Map(ulong device, ulong inode)
    {
        if (inode <= InodeMask && TryGetPrefix(device, out ulong prefix))
        {
            return (prefix << InodeBits) | inode;
        }
        if (_overflow.TryGetValue((device, inode), out ulong known))
        {
            return known;
        }
        // Entries stay for the session (a qid must not change while the guest may cache it), so their number
        // is bounded; past it the request fails (QEMU answers ENFILE when its remap space runs out).
        if (Interlocked.Increment(ref _overflowCount) > maxOverflowEntries)
        {
            Interlocked.Decrement(ref _overflowCount);
            throw new QidSpaceExhaustedException();
        }
        ulong number = OverflowFlag | (ulong)Interlocked.Increment(ref _nextOverflow);
        if (_overflow.TryAdd((device, inode), number))
        {
            return number;
        }
        Interlocked.Decrement(ref _overflowCount); // another request mapped it first: its number stands
        return _overflow[(device, inode)];
    }

    public int OverflowCount => Volatile.Read(ref _overflowCount);

    /// <summary>A new session (Tversion): the guest forgets every qid, so the overflow numbers are given back.</summary>
    public void ResetOverflow()
    {
        _overflow.Clear();
        Interlocked.Exchange(ref _overflowCount, 0);
        Interlocked.Exchange(ref _nextOverflow, 0);
    }

    public Qid ToQid(in FileStat attributes)
    {
        byte type = attributes.IsDirectory ? Qid.TypeDir : attributes.IsSymlink ? Qid.TypeSymlink : Qid.TypeFile;
        // QEMU's stat_to_qid: the version changes when mtime or size does, which cache=loose relies on.
        uint version = (uint)(attributes.Modify.Seconds ^ (long)(attributes.Size << 8));
        return new Qid(type, version, Map(attributes.Device, attributes.Inode));
    }

    private bool TryGetPrefix(ulong device, out ulong prefix)
    {
        if (_devicePrefixes.TryGetValue(device, out prefix))
        {
            return true;
        }
        lock (_prefixLock)
        {
            if (_devicePrefixes.TryGetValue(device, out prefix))
            {
                return true;
            }
            if (_devicePrefixes.Count >= MaxPrefixes)
            {
                return false;
            }
            prefix = (ulong)_devicePrefixes.Count;
            _devicePrefixes[device] = prefix;
            return true;
        }
    }
}

/// <summary>The session's overflow qid numbers are used up (<see cref="SessionLimits.MaxQidOverflowEntries"/>);
/// the server answers the request ENFILE.</summary>
internal sealed class QidSpaceExhaustedException() : Exception("qid overflow space used up");

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
        return new Qid(type, Version(attributes), Map(attributes.Device, attributes.Inode));
    }

    /// <summary>
    /// qid.version: the Linux client's cache=mmap and cache=loose keep a file's cached pages only while it stays
    /// the same (v9fs_test_inode_dotl), so it must change whenever data or size may have changed. QEMU's
    /// stat_to_qid uses mtime seconds ^ size &lt;&lt; 8, which misses a same-size rewrite within a second. Here
    /// every field that a write, truncate or setattr moves goes in: mtime and ctime to the nanosecond (ctime
    /// also catches a write whose mtime was put back with utime) and the size, mixed so that no single change
    /// cancels out. Still bounded by the host's timestamp granularity (one jiffy on most filesystems): two
    /// same-size writes within it look alike. Never 0: the client never caches a file whose version is 0.
    /// </summary>
    private static uint Version(in FileStat a)
    {
        ulong h = Mix((ulong)a.Modify.Seconds, a.Modify.Nanoseconds);
        h = Mix(h ^ (ulong)a.Change.Seconds, a.Change.Nanoseconds);
        h = Mix(h, a.Size);
        uint version = (uint)(h ^ (h >> 32));
        return version == 0 ? 1 : version;
    }

    /// <summary>One multiply-xorshift round (as in splitmix64) of <paramref name="h"/> with <paramref name="value"/>.</summary>
    private static ulong Mix(ulong h, ulong value)
    {
        h = (h ^ value) * 0x9E3779B97F4A7C15UL;
        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9UL;
        return h ^ (h >> 32);
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

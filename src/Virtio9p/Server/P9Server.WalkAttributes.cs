using System.Diagnostics;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

public sealed partial class P9Server
{
    /// <summary>
    /// The attributes a Twalk read for its last name, kept for the first Tgetattr on the new fid.
    /// <para>
    /// Why: Rwalk carries only qids, so the Linux client follows every lookup with a Tgetattr on the fid it
    /// just walked (v9fs_vfs_lookup -> v9fs_fid_iget_dotl). Both were a helper round trip (an lstat by path)
    /// and the second sat in the worker pool; under TCG each round trip costs two thread wake-ups that wait for
    /// a core the guest's vCPUs hold. The walk already has the full stat of that name, so the first Tgetattr
    /// answers from it on the queue thread: a lookup costs one helper round trip, as a FUSE_LOOKUP does
    /// (whose reply carries the attributes, which virtiofsd's cache=never trusts the same way).
    /// </para>
    /// <para>
    /// When it is used (all must hold, else the Tgetattr asks the helper as before): the fid is still the object
    /// the walk created (not a reused number), it is still a path fid, no request that could change any file's
    /// attributes through this server was served since the walk read the generation (<see cref="_changes"/>,
    /// read before the walk's first lstat and bumped after every such request), and at most
    /// <see cref="WalkAttributesLifetime"/> has passed: a host process changing the file in that window is seen
    /// at the next Tgetattr, as if it had changed it just after this one. Used once: the next Tgetattr on the
    /// fid (stat(2) in cache=none sends its own) asks the host again.
    /// </para>
    /// <para>
    /// The walk's file type also answers a Tunlinkat of the same path (see <see cref="TryRecentWalkType"/>).
    /// </para>
    /// <para>
    /// Memory: a fixed table of <see cref="WalkSlots"/> entries indexed by fid number, no allocation; a walk
    /// overwrites its slot, so concurrent lookups on fids with the same low bits only lose the shortcut.
    /// </para>
    /// </summary>
    private const int WalkSlots = 64;

    /// <summary>How long a walk's attributes may answer the following Tgetattr (10 ms: far above the guest's
    /// turnaround between Rwalk and Tgetattr even under TCG, far below anything a person or a build sees).</summary>
    internal static readonly long DefaultWalkAttributesLifetime = Stopwatch.Frequency / 100;

    /// <summary>The lifetime in <see cref="Stopwatch"/> ticks; only tests change it, so that whether the shortcut is
    /// taken does not depend on how fast the machine runs the test (a JIT pause on a busy CI host passed 10 ms).</summary>
    internal long WalkAttributesLifetime { get; set; } = DefaultWalkAttributesLifetime;

    private readonly WalkAttributes[] _walkAttributes = new WalkAttributes[WalkSlots];
    private readonly Lock _walkAttributesSync = new();

    /// <summary>Counts requests served that may have changed some file's attributes (see <see cref="ChangesFiles"/>).</summary>
    private long _changes;

    private struct WalkAttributes
    {
        /// <summary>The fid the walk made or moved, as object and generation: a released fid object is reused
        /// for later fids (<see cref="FidTable.Rent"/>), which must not find this walk's attributes.</summary>
        public Fid? Owner;
        public long OwnerGeneration;
        /// <summary>The path the attributes are of, as the walk built it (the owner's path may move on).</summary>
        public byte[]? Path;
        /// <summary>A Tgetattr was answered from them: the next one asks the host.</summary>
        public bool AttributesUsed;
        public long Changes;
        public long Timestamp;
        public FileStat Attributes;

        /// <summary>No change was served since the walk began and it is at most the lifetime old: the rule every use
        /// of a kept walk obeys.</summary>
        public readonly bool HoldsAt(long changesNow, long now, long lifetime) =>
            Changes == changesNow && now - Timestamp <= lifetime;
    }

    /// <summary>Whether a request of this type may change a file's attributes (size, times, mode, owner, links,
    /// a directory's entries): every request --readonly refuses, plus Tlopen (O_TRUNC). Counted after it is
    /// served, failed or not. A Tclunk that commits an xattr counts itself (<see cref="Clunk"/>).</summary>
    private static bool ChangesFiles(P9MessageType type) => type is P9MessageType.Twrite or P9MessageType.Tlcreate
        or P9MessageType.Tsetattr or P9MessageType.Tmkdir or P9MessageType.Tmknod or P9MessageType.Tsymlink
        or P9MessageType.Tlink or P9MessageType.Trename or P9MessageType.Trenameat or P9MessageType.Tunlinkat
        or P9MessageType.Tremove or P9MessageType.Txattrcreate or P9MessageType.Tlopen;

    /// <summary>Marks that a request which may have changed files was served: every kept walk attribute
    /// read before now is stale.</summary>
    private void CountChange() => Interlocked.Increment(ref _changes);

    /// <summary>Keeps the walk's attributes for <paramref name="fid"/> as it was at <paramref name="generation"/>
    /// (read before the fid was shared: if the guest clunked it since and the object is another fid now, the
    /// attributes never match it).</summary>
    private void KeepWalkAttributes(Fid fid, long generation, byte[] path, long changes, in FileStat attributes)
    {
        long now = Stopwatch.GetTimestamp();
        lock (_walkAttributesSync)
        {
            if (fid.Generation != generation)
            {
                return; // clunked and reused already: its id is another fid's now
            }
            ref WalkAttributes slot = ref _walkAttributes[fid.Id % WalkSlots];
            slot.Owner = fid;
            slot.OwnerGeneration = generation;
            slot.Path = path;
            slot.AttributesUsed = false;
            slot.Changes = changes;
            slot.Timestamp = now;
            slot.Attributes = attributes;
        }
    }

    /// <summary>The kept attributes of <paramref name="fid"/>'s walk if they still hold (see above); when
    /// <paramref name="consume"/>, they answer no other Tgetattr, whether or not they held.</summary>
    private bool TryWalkAttributes(Fid fid, bool consume, out FileStat attributes)
    {
        ref WalkAttributes slot = ref _walkAttributes[fid.Id % WalkSlots];
        long changes = Volatile.Read(ref _changes);
        long now = Stopwatch.GetTimestamp();
        lock (_walkAttributesSync)
        {
            if (!ReferenceEquals(slot.Owner, fid) || slot.OwnerGeneration != fid.Generation || slot.AttributesUsed)
            {
                attributes = default;
                return false;
            }
            bool fresh = slot.HoldsAt(changes, now, WalkAttributesLifetime) &&
                fid.Kind == FidKind.Path;
            attributes = fresh ? slot.Attributes : default;
            if (consume)
            {
                slot.AttributesUsed = true;
            }
            return fresh;
        }
    }

    /// <summary>
    /// The path array a kept walk built for <paramref name="directory"/>/<paramref name="name"/>, or null. Paths
    /// are never changed in place (a rename gives a fid a new array), so one array may name several fids: a
    /// lookup the client repeats then allocates no new path.
    /// </summary>
    private byte[]? RecentWalkPath(byte[] directory, ReadOnlySpan<byte> name)
    {
        bool root = PathNames.IsRoot(directory);
        int slash = root ? 0 : directory.Length; // where the '/' before the name stands, as PathNames.Join puts it
        int length = slash + 1 + name.Length;
        lock (_walkAttributesSync)
        {
            foreach (ref readonly WalkAttributes slot in _walkAttributes.AsSpan())
            {
                byte[]? path = slot.Path;
                if (path is not null && path.Length == length && path[slash] == (byte)'/' &&
                    path.AsSpan(slash + 1).SequenceEqual(name) &&
                    (root || path.AsSpan(0, slash).SequenceEqual(directory)))
                {
                    return path;
                }
            }
        }
        return null;
    }

    /// <summary>
    /// Whether <paramref name="path"/> names a directory, by a walk of that very path that still holds (no
    /// change served since it began, at most <see cref="WalkAttributesLifetime"/> old); false when no such walk
    /// is kept, and the caller asks the host.
    /// <para>
    /// Why: Tunlinkat must refuse a directory without AT_REMOVEDIR (EISDIR) and a non-directory with it
    /// (ENOTDIR), and the proxy protocol's only removal, T_REMOVE, is remove(3), which takes either; so the type
    /// cost an lstat round trip to the helper before the T_REMOVE. The Linux client walks the name (Twalk +
    /// Tgetattr, its lookup) just before it sends Tunlinkat, so the type is usually known already: an unlink
    /// costs one round trip instead of two. A host process that replaces the name by another type within the
    /// lifetime is treated as if it had done so just after the removal; the lstat it saves was no stronger, the
    /// helper's T_REMOVE acting on the name after it as well.
    /// </para>
    /// </summary>
    private bool TryRecentWalkType(byte[] path, out bool isDirectory)
    {
        long changes = Volatile.Read(ref _changes);
        long now = Stopwatch.GetTimestamp();
        lock (_walkAttributesSync)
        {
            foreach (ref readonly WalkAttributes slot in _walkAttributes.AsSpan())
            {
                if (slot.Path is not null && slot.HoldsAt(changes, now, WalkAttributesLifetime) &&
                    slot.Path.AsSpan().SequenceEqual(path))
                {
                    isDirectory = slot.Attributes.IsDirectory;
                    return true;
                }
            }
        }
        isDirectory = false;
        return false;
    }
}

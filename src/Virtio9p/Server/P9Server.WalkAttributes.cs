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
    /// Memory: a fixed table of <see cref="WalkSlots"/> entries indexed by fid number, no allocation; a walk
    /// overwrites its slot, so concurrent lookups on fids with the same low bits only lose the shortcut.
    /// </para>
    /// </summary>
    private const int WalkSlots = 64;

    /// <summary>How long a walk's attributes may answer the following Tgetattr (10 ms: far above the guest's
    /// turnaround between Rwalk and Tgetattr even under TCG, far below anything a person or a build sees).</summary>
    internal static readonly long WalkAttributesLifetime = Stopwatch.Frequency / 100;

    private readonly WalkAttributes[] _walkAttributes = new WalkAttributes[WalkSlots];
    private readonly Lock _walkAttributesSync = new();

    /// <summary>Counts requests served that may have changed some file's attributes (see <see cref="ChangesFiles"/>).</summary>
    private long _changes;

    private struct WalkAttributes
    {
        public Fid? Owner;
        public long Changes;
        public long Timestamp;
        public FileStat Attributes;
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

    private void KeepWalkAttributes(Fid fid, long changes, in FileStat attributes)
    {
        ref WalkAttributes slot = ref _walkAttributes[fid.Id % WalkSlots];
        long now = Stopwatch.GetTimestamp();
        lock (_walkAttributesSync)
        {
            slot.Owner = fid;
            slot.Changes = changes;
            slot.Timestamp = now;
            slot.Attributes = attributes;
        }
    }

    /// <summary>The kept attributes of <paramref name="fid"/>'s walk if they still hold (see above); when
    /// <paramref name="consume"/>, the slot is emptied whether or not they did.</summary>
    private bool TryWalkAttributes(Fid fid, bool consume, out FileStat attributes)
    {
        ref WalkAttributes slot = ref _walkAttributes[fid.Id % WalkSlots];
        long changes = Volatile.Read(ref _changes);
        long now = Stopwatch.GetTimestamp();
        lock (_walkAttributesSync)
        {
            if (!ReferenceEquals(slot.Owner, fid))
            {
                attributes = default;
                return false;
            }
            bool fresh = slot.Changes == changes && now - slot.Timestamp <= WalkAttributesLifetime &&
                fid.Kind == FidKind.Path;
            attributes = fresh ? slot.Attributes : default;
            if (consume)
            {
                slot = default;
            }
            return fresh;
        }
    }
}

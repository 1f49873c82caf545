using Tmds.Linux;
using VirtFs.Virtio9p.Protocol;

namespace VirtFs.Virtio9p.Server;

/// <summary>
/// Scratch memory owned by one worker thread and reused for every request it serves, so the hot path
/// allocates nothing. Sized for the largest msize we ever negotiate.
/// </summary>
public sealed class WorkerBuffers
{
    /// <summary>Most iovecs one zero-copy transfer may need: a 1 MiB payload in 4 KiB guest pages plus
    /// slack for unaligned edges.</summary>
    public const int MaxIovecs = 512;

    public byte[] Request { get; } = GC.AllocateUninitializedArray<byte>(P9Limits.MaxMessageSize, pinned: true);
    public byte[] Reply { get; } = GC.AllocateUninitializedArray<byte>(P9Limits.MaxMessageSize, pinned: true);
    /// <summary>getdents64 output before it is re-encoded as Rreaddir entries.</summary>
    public byte[] Dirents { get; } = GC.AllocateUninitializedArray<byte>(P9Limits.MaxMessageSize, pinned: true);
    public iovec[] Iovecs { get; } = GC.AllocateArray<iovec>(MaxIovecs, pinned: true);

    /// <summary>Set for the queue thread's buffers: the thread serving with them must not wait on the disk, so a
    /// Tread the page cache cannot answer at once is given back (<see cref="P9Server.NotServedHere"/>) for a worker
    /// to serve.</summary>
    public bool MustNotBlock { get; init; }
}

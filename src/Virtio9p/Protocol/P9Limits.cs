namespace VirtFs.Virtio9p.Protocol;

/// <summary>Protocol limits, each with the reason it exists.</summary>
public static class P9Limits
{
    /// <summary>size[4] type[1] tag[2]: every message starts with it.</summary>
    public const int HeaderSize = 7;

    /// <summary>Rread/Rreaddir header: size[4] type[1] tag[2] count[4]. The Linux client puts exactly these
    /// bytes in the first descriptor of a zero-copy read (net/9p/trans_virtio.c).</summary>
    public const int ReadReplyHeaderSize = 11;

    /// <summary>Twrite header: size[4] type[1] tag[2] fid[4] offset[8] count[4]; the data follows.</summary>
    public const int WriteRequestHeaderSize = 23;

    /// <summary>The largest msize we accept. The Linux virtio transport caps itself at 512000
    /// (trans_virtio.c, VIRTQUEUE_DEFAULT_NUM pages); a little headroom for other clients, and a bound on
    /// per-worker buffers.</summary>
    public const int MaxMessageSize = 1024 * 1024;

    /// <summary>A msize smaller than this cannot carry a useful Rgetattr/Rreaddir; the Linux client refuses
    /// anything under 4096 too.</summary>
    public const int MinMessageSize = 4096;

    /// <summary>P9_IOHDRSZ (include/net/9p/9p.h): what the Linux client reserves of msize for a Tread/Twrite header.</summary>
    public const int ClientIoHeaderSize = 24;

    /// <summary>
    /// The iounit of Rlopen/Rlcreate for a session of <paramref name="msize"/>: the most whole 4 KiB pages one
    /// message carries, as QEMU (get_iounit: a multiple of the export's f_bsize). The Linux client splits reads and
    /// writes into iounit-sized pieces (msize - P9_IOHDRSZ when iounit is 0): with 0, a 512000-byte msize gave
    /// 511976-byte pieces, so every piece after the first started and ended mid-page in the guest's page cache
    /// and on the host file.
    /// </summary>
    public static uint IoUnit(int msize) => (uint)Math.Max(0, (msize - ClientIoHeaderSize) / 4096 * 4096);

    /// <summary>P9_MAXWELEM: a Twalk names at most 16 elements (9P spec, walk(5)).</summary>
    public const int MaxWalkElements = 16;

    /// <summary>NAME_MAX on Linux: a longer name can never exist on the host, so refuse it early.</summary>
    public const int MaxNameLength = 255;

    /// <summary>PATH_MAX: bounds paths we build from walked names and symlink targets.</summary>
    public const int MaxPathLength = 4096;

    /// <summary>"No fid" in Tattach's afid (P9_NOFID).</summary>
    public const uint NoFid = uint.MaxValue;

    /// <summary>"No tag" (P9_NOTAG), used by Tversion.</summary>
    public const ushort NoTag = ushort.MaxValue;

    /// <summary>Largest xattr value we buffer for Txattrwalk/Txattrcreate: Linux's XATTR_SIZE_MAX.</summary>
    public const int MaxXattrSize = 64 * 1024;
}

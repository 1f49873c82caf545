using System.Buffers.Binary;
using VirtFs.ProxyFs.Protocol;

namespace VirtFs.Fuzz;

/// <summary>
/// Built-in seeds for the two targets whose input is not a recorded byte stream: split rings laid out the way
/// Linux's virtio_ring and 9pnet_virtio lay them out (ring), and the requests our backend sends the helper
/// during a session, written by the backend's own encoder (proxy).
/// </summary>
internal static class Seeds
{
    public static int Write(string target, string outDir)
    {
        Directory.CreateDirectory(outDir);
        var seeds = target switch
        {
            "ring" => Ring(),
            "proxy" => Proxy(),
            _ => null,
        };
        if (seeds is null)
        {
            Console.Error.WriteLine($"no built-in seeds for {target} (9p and vhost-user seeds come from recordings: virtfs-fuzz corpus)");
            return 2;
        }
        foreach ((string name, byte[] bytes) in seeds)
        {
            File.WriteAllBytes(Path.Combine(outDir, name), bytes);
        }
        Console.WriteLine($"{seeds.Count} seed(s) in {outDir}");
        return 0;
    }

    private sealed class RingImage(int log2Size, bool eventIdx, bool indirect)
    {
        private readonly byte[] _memory = new byte[0x10000];
        private int _end;
        private ushort _avail;
        public int Size => 1 << log2Size;

        public RingImage Desc(ulong table, int index, ulong addr, uint len, ushort flags, ushort next)
        {
            int at = (int)table + 16 * index;
            BinaryPrimitives.WriteUInt64LittleEndian(_memory.AsSpan(at), addr);
            BinaryPrimitives.WriteUInt32LittleEndian(_memory.AsSpan(at + 8), len);
            BinaryPrimitives.WriteUInt16LittleEndian(_memory.AsSpan(at + 12), flags);
            BinaryPrimitives.WriteUInt16LittleEndian(_memory.AsSpan(at + 14), next);
            _end = Math.Max(_end, at + 16);
            return this;
        }

        public RingImage Data(ulong gpa, ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_memory.AsSpan((int)gpa));
            _end = Math.Max(_end, (int)gpa + bytes.Length);
            return this;
        }

        public RingImage Publish(ushort head)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(_memory.AsSpan(0x1000 + 4 + 2 * (_avail % Size)), head);
            _avail++;
            BinaryPrimitives.WriteUInt16LittleEndian(_memory.AsSpan(0x1000 + 2), _avail);
            if (eventIdx)
            {
                // used_event (after the avail ring): ask for an interrupt after the first used entry
                BinaryPrimitives.WriteUInt16LittleEndian(_memory.AsSpan(0x1000 + 4 + 2 * Size), 0);
            }
            _end = Math.Max(_end, 0x1000 + 6 + 2 * Size);
            return this;
        }

        public byte[] ToInput()
        {
            byte[] input = new byte[2 + _end];
            input[0] = (byte)log2Size;
            input[1] = (byte)((eventIdx ? 1 : 0) | (indirect ? 2 : 0));
            _memory.AsSpan(0, _end).CopyTo(input.AsSpan(2));
            return input;
        }
    }

    private const ushort Next = 1, Wr = 2, Indirect = 4;

    private static List<(string, byte[])> Ring()
    {
        byte[] tversion = [19, 0, 0, 0, 100, 0xff, 0xff, 0, 0, 2, 0, 8, 0, .. "9P2000.L"u8];
        return
        [
            // a small request and its reply buffer: one readable, one writable descriptor
            ("simple", new RingImage(8, false, true).Data(0x3000, tversion)
                .Desc(0, 0, 0x3000, 19, Next, 1).Desc(0, 1, 0x4000, 4096, Wr, 0).Publish(0).ToInput()),
            // 9pnet_virtio zero-copy read: the Rread header in one descriptor, the data in a page that crosses
            // from the first region into the second
            ("zero-copy-read", new RingImage(8, true, true).Data(0x3000, tversion)
                .Desc(0, 0, 0x3000, 23, Next, 1).Desc(0, 1, 0x4000, 11, Wr | Next, 2)
                .Desc(0, 2, 0x7800, 4096, Wr, 0).Publish(0).ToInput()),
            // an indirect table (Linux uses one for chains of more than one descriptor when negotiated)
            ("indirect", new RingImage(8, false, true).Data(0x3000, tversion)
                .Desc(0, 0, 0x5000, 48, Indirect, 0)
                .Desc(0x5000, 0, 0x3000, 19, Next, 1).Desc(0x5000, 1, 0x4000, 11, Wr | Next, 2)
                .Desc(0x5000, 2, 0x6000, 512, Wr, 0).Publish(0).ToInput()),
            // several chains in flight on a small ring with EVENT_IDX
            ("event-idx", new RingImage(4, true, false).Data(0x3000, tversion)
                .Desc(0, 0, 0x3000, 19, Next, 1).Desc(0, 1, 0x4000, 64, Wr, 0)
                .Desc(0, 2, 0x3000, 19, Next, 3).Desc(0, 3, 0x4100, 64, Wr, 0)
                .Desc(0, 4, 0x3000, 19, Next, 5).Desc(0, 5, 0x4200, 64, Wr, 0)
                .Publish(0).Publish(2).Publish(4).ToInput()),
        ];
    }

    private static List<(string, byte[])> Proxy()
    {
        var buffer = new byte[ProxyLimits.MaxMessageSize];
        var all = new List<(string, byte[])>();
        void Add(string name, int length) => all.Add((name, buffer.AsSpan(0, length).ToArray()));
        // What the backend sends for a mount, a file's life and its xattrs (paths as QEMU 7.2 names them: "path\0").
        Add("lstat", ProxyRequestEncoder.PathOnly(buffer, ProxyRequestType.Lstat, "/\0"u8));
        Add("statfs", ProxyRequestEncoder.PathOnly(buffer, ProxyRequestType.Statfs, "/\0"u8));
        Add("create", ProxyRequestEncoder.Create(buffer, "/dir/file\0"u8, 0x241, 0x1a4, 1000, 1000));
        Add("open", ProxyRequestEncoder.Open(buffer, "/dir/file\0"u8, 0x8002));
        Add("mkdir", ProxyRequestEncoder.Mkdir(buffer, "/dir\0"u8, 0x41ed, 1000, 1000));
        Add("mknod", ProxyRequestEncoder.Mknod(buffer, "/dir/fifo\0"u8, 0x11a4, 0, 1000, 1000));
        Add("symlink", ProxyRequestEncoder.Symlink(buffer, "file\0"u8, "/dir/link\0"u8, 1000, 1000));
        Add("readlink", ProxyRequestEncoder.PathInt(buffer, ProxyRequestType.Readlink, "/dir/link\0"u8, 4096));
        Add("link", ProxyRequestEncoder.TwoStrings(buffer, ProxyRequestType.Link, "/dir/file\0"u8, "/dir/hard\0"u8));
        Add("rename", ProxyRequestEncoder.TwoStrings(buffer, ProxyRequestType.Rename, "/dir/hard\0"u8, "/dir/moved\0"u8));
        Add("chmod", ProxyRequestEncoder.PathInt(buffer, ProxyRequestType.Chmod, "/dir/file\0"u8, 0x1ed));
        Add("chown", ProxyRequestEncoder.Chown(buffer, "/dir/file\0"u8, 1000, 1000));
        Add("truncate", ProxyRequestEncoder.Truncate(buffer, "/dir/file\0"u8, 4096));
        Add("utime", ProxyRequestEncoder.Utime(buffer, "/dir/file\0"u8, 1, 2, 3, 4));
        Add("getxattr", ProxyRequestEncoder.GetXattr(buffer, 64, "/dir/file\0"u8, "user.a\0"u8));
        Add("listxattr", ProxyRequestEncoder.ListXattr(buffer, 0, "/dir/file\0"u8));
        Add("setxattr", ProxyRequestEncoder.SetXattr(buffer, "/dir/file\0"u8, "user.a\0"u8, "value"u8, 0));
        Add("removexattr", ProxyRequestEncoder.TwoStrings(buffer, ProxyRequestType.RemoveXattr, "/dir/file\0"u8, "user.a\0"u8));
        Add("getversion", ProxyRequestEncoder.PathOnly(buffer, ProxyRequestType.GetVersion, "/dir/file\0"u8));
        Add("remove", ProxyRequestEncoder.PathOnly(buffer, ProxyRequestType.Remove, "/dir/moved\0"u8));
        all.Add(("session", all.SelectMany(s => s.Item2).ToArray()));
        return all;
    }
}

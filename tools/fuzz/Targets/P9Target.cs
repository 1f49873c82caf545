using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Protocol;
using VirtFs.Virtio9p.Server;

namespace VirtFs.Fuzz.Targets;

/// <summary>
/// The 9P decoder and dispatcher (<see cref="P9Server"/>) over the in-process <see cref="LocalFileSystem"/> in a
/// scratch export. An input is a sequence of 9P requests framed by their own size field, exactly as the guest
/// client writes them (so a recorded session is a seed as it is); a size that does not fit what is left makes
/// the rest of the input one last (lying) request. Each input starts from a fresh server and a fresh export,
/// after the handshake a mount does (Tversion msize 65536, Tattach fid 0).
///
/// Findings: an exception out of <see cref="P9Server.Serve"/>; a reply that is not a well-formed R-message of
/// the size it claims; any change next to the export (a file outside it, the export root itself).
/// </summary>
internal sealed class P9Target : IFuzzTarget
{
    private const int MessageSize = 65536;
    private readonly string _parent;
    private readonly string _export;
    private readonly string _outside;
    private readonly UnixFileMode _outsideMode;
    private readonly string _trash;
    private readonly WorkerBuffers _buffers = new();
    private readonly ArrayExchange _exchange = new(MessageSize);

    public P9Target()
    {
        string scratch = Environment.GetEnvironmentVariable("VIRTFS_FUZZ_SCRATCH") ?? Path.GetTempPath();
        _parent = Path.Combine(scratch, $"virtfs-fuzz-9p-{Environment.ProcessId}");
        _trash = _parent + ".trash";
        Directory.CreateDirectory(_parent);
        Directory.CreateDirectory(_trash);
        _export = Path.Combine(_parent, "export");
        _outside = Path.Combine(_parent, "outside");
        File.WriteAllText(_outside, "outside the export");
        _outsideMode = File.GetUnixFileMode(_outside);
    }

    public int MaxInputLength => 16384;

    public void Execute(ReadOnlySpan<byte> input)
    {
        ResetExport();
        using var fs = new LocalFileSystem(_export);
        var server = new P9Server(fs, NullLogger.Instance, MessageSize);
        Send(server, Handshake.Version);
        Send(server, Handshake.Attach);
        while (input.Length > 0)
        {
            int size = input.Length >= 4 ? (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(input), int.MaxValue) : input.Length;
            if (size < P9Limits.HeaderSize || size > input.Length)
            {
                size = input.Length;
            }
            Send(server, input[..size]);
            input = input[size..];
        }
        CheckOutsideUntouched();
    }

    private void Send(P9Server server, ReadOnlySpan<byte> request)
    {
        _exchange.Load(request);
        int length = server.Serve(_exchange, _buffers, out _);
        if (length == 0)
        {
            return;
        }
        ReadOnlySpan<byte> reply = _exchange.Reply[..length];
        if (length < P9Limits.HeaderSize || BinaryPrimitives.ReadUInt32LittleEndian(reply) != (uint)length)
        {
            throw new FuzzFindingException($"reply of {length} bytes has size field {(length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(reply) : 0)}");
        }
        if (reply[4] % 2 != 1)
        {
            throw new FuzzFindingException($"reply type {reply[4]} is not an R-message");
        }
        if (length > MessageSize)
        {
            throw new FuzzFindingException($"reply of {length} bytes exceeds msize {MessageSize}");
        }
    }

    /// <summary>
    /// A fresh export per input. The old one is renamed into a trash directory beside the parent and the trash
    /// emptied with rm(1) every <see cref="PurgeEvery"/> inputs: the guest may have created names that are not
    /// UTF-8, which .NET's own recursive delete cannot name (a first version of this target deleted the tree
    /// with Directory.Delete, and the input after such a name failed in the harness, not in the server).
    /// </summary>
    private void ResetExport()
    {
        if (Directory.Exists(_export))
        {
            Directory.Move(_export, Path.Combine(_trash, (_resets++).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            if (_resets % PurgeEvery == 0)
            {
                Purge();
            }
        }
        Directory.CreateDirectory(Path.Combine(_export, "d", "e"));
        File.WriteAllText(Path.Combine(_export, "d", "f"), "data");
        File.WriteAllText(Path.Combine(_export, "file"), "hello, fuzz");
        File.CreateSymbolicLink(Path.Combine(_export, "link"), "d/f");
        File.CreateSymbolicLink(Path.Combine(_export, "up"), "../outside");
    }

    private const int PurgeEvery = 256;
    private long _resets;

    /// <summary>Empties the trash; the guest may have taken every permission away (chmod 0 on a directory), so
    /// permissions are given back first for a run that is not root.</summary>
    private void Purge()
    {
        foreach (string[] argv in new[] { new[] { "chmod", "-R", "u+rwx", _trash }, ["rm", "-rf", _trash] })
        {
            using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(argv[0], argv[1..])
                { RedirectStandardError = true, RedirectStandardOutput = true })!;
            p.WaitForExit();
        }
        Directory.CreateDirectory(_trash);
    }

    private void CheckOutsideUntouched()
    {
        string[] entries = Directory.GetFileSystemEntries(_parent);
        if (entries.Length != 2 || !Directory.Exists(_export) || File.ReadAllText(_outside) != "outside the export"
            || File.GetUnixFileMode(_outside) != _outsideMode)
        {
            throw new FuzzFindingException($"something outside the export changed: {string.Join(", ", entries)}");
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(_export))
        {
            Directory.Move(_export, Path.Combine(_trash, "last"));
        }
        Purge();
        Directory.Delete(_trash);
        File.Delete(_outside);
        Directory.Delete(_parent);
    }

    /// <summary>The two requests a Linux mount sends first.</summary>
    private static class Handshake
    {
        public static readonly byte[] Version = Message(P9MessageType.Tversion, P9Limits.NoTag,
            [.. U32(MessageSize), .. Str("9P2000.L")]);
        public static readonly byte[] Attach = Message(P9MessageType.Tattach, 1,
            [.. U32(0), .. U32(P9Limits.NoFid), .. Str("root"), .. Str(""), .. U32(0)]);

        private static byte[] U32(uint v)
        {
            byte[] b = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, v);
            return b;
        }

        private static byte[] Str(string s)
        {
            byte[] b = new byte[2 + s.Length];
            BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)s.Length);
            System.Text.Encoding.ASCII.GetBytes(s).CopyTo(b, 2);
            return b;
        }

        private static byte[] Message(P9MessageType type, ushort tag, byte[] body)
        {
            byte[] m = new byte[P9Limits.HeaderSize + body.Length];
            BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)m.Length);
            m[4] = (byte)type;
            BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(5), tag);
            body.CopyTo(m, P9Limits.HeaderSize);
            return m;
        }
    }
}

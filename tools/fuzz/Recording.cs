using System.Buffers.Binary;
using VirtFs.VhostUser.Diagnostics;

namespace VirtFs.Fuzz;

/// <summary>
/// Turns a backend recording (<see cref="SessionRecorder"/>, VIRTFS_RECORD) into seed inputs:
/// <list type="bullet">
/// <item>vhost-user: the whole conversation as one input in <see cref="Targets.VhostUserTarget"/>'s format (the fd
/// kind guessed from the request: memory for SET_MEM_TABLE and ADD_MEM_REG, an eventfd otherwise), plus its
/// first half;</item>
/// <item>9P: windows of consecutive requests, chosen so that every message type of the session starts in at
/// least one window; a Twrite's data is cut to 64 bytes (count and size patched) to keep inputs small.</item>
/// </list>
/// </summary>
internal static class Recording
{
    private const int P9Window = 24;
    private const int MaxP9Seeds = 40;

    public static int WriteCorpus(string recordingPath, string outDir)
    {
        byte[] data = File.ReadAllBytes(recordingPath);
        var vhost = new List<byte[]>();
        var p9 = new List<byte[]>();
        for (int at = 0; at + 6 <= data.Length;)
        {
            byte kind = data[at], fds = data[at + 1];
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at + 2));
            if (at + 6 + length > data.Length) break;
            byte[] body = data.AsSpan(at + 6, length).ToArray();
            if (kind == SessionRecorder.KindVhostUser) vhost.Add(VhostRecord(body, fds));
            else if (kind == SessionRecorder.KindP9 && P9Request(body) is { } request) p9.Add(request);
            at += 6 + length;
        }
        Directory.CreateDirectory(Path.Combine(outDir, "vhost-user"));
        Directory.CreateDirectory(Path.Combine(outDir, "9p"));
        int written = 0;
        if (vhost.Count > 0)
        {
            written += Write(Path.Combine(outDir, "vhost-user", "session-full"), vhost, 32768);
            written += Write(Path.Combine(outDir, "vhost-user", "session-start"), vhost.Take(vhost.Count / 2), 32768);
        }
        var seenTypes = new HashSet<byte>();
        int seeds = 0;
        for (int start = 0; start < p9.Count && seeds < MaxP9Seeds; start++)
        {
            if (!seenTypes.Add(p9[start][4])) continue;
            // a window starting a little before the first request of this type, so the fids it names exist
            int from = Math.Max(0, start - P9Window / 2);
            written += Write(Path.Combine(outDir, "9p", $"session-{seeds:D2}-type{p9[start][4]}"), p9.Skip(from).Take(P9Window), 16384);
            seeds++;
        }
        Console.WriteLine($"{vhost.Count} vhost-user messages, {p9.Count} 9P requests ({seenTypes.Count} types) -> {written} seed(s) in {outDir}");
        return 0;
    }

    private static byte[] VhostRecord(byte[] message, byte fds)
    {
        uint request = message.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(message) : 0;
        int kind = request is 5 or 37 ? 1 : 0; // SET_MEM_TABLE, ADD_MEM_REG: the guest-memory memfd
        byte[] record = new byte[1 + message.Length];
        record[0] = (byte)((kind << 6) | Math.Min((int)fds, 7));
        message.CopyTo(record, 1);
        return record;
    }

    private static byte[]? P9Request(byte[] request)
    {
        if (request.Length < 7) return null;
        const byte Twrite = 118;
        const int WriteHeader = 7 + 4 + 8 + 4;
        if (request[4] == Twrite && request.Length > WriteHeader + 64)
        {
            request = request[..(WriteHeader + 64)];
            BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(19), 64);
        }
        if (request.Length > 4096) return null;
        BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)request.Length);
        return request;
    }

    private static int Write(string path, IEnumerable<byte[]> parts, int limit)
    {
        using var stream = new MemoryStream();
        foreach (byte[] part in parts)
        {
            if (stream.Length + part.Length > limit) break;
            stream.Write(part);
        }
        if (stream.Length == 0) return 0;
        File.WriteAllBytes(path, stream.ToArray());
        return 1;
    }
}

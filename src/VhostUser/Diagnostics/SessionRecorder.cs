using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace VirtFs.VhostUser.Diagnostics;

/// <summary>
/// Debug aid for fuzzing (issue 13, docs/fuzzing.md): with <c>VIRTFS_RECORD=FILE</c> in the backend's
/// environment, every vhost-user message (header and payload, with the number of fds that came with it) and every
/// 9P request a guest sends is appended to FILE, so a real guest session becomes seed inputs for the fuzz targets
/// (<c>virtfs-fuzz corpus FILE DIR</c>). The file is opened before the backend confines itself and written with
/// pwrite only. Record format: <c>u8 kind; u8 fds; u32 length (LE); length bytes</c>.
/// Off unless the variable is set; never for production use (it copies every request).
/// </summary>
public sealed class SessionRecorder : IDisposable
{
    public const byte KindVhostUser = 1;
    public const byte KindP9 = 2;
    /// <summary>Bytes kept of one record: a 9P Twrite's data is of no use to the fuzzers beyond this.</summary>
    public const int MaxRecordBytes = 8192;

    private readonly SafeFileHandle _file;
    private readonly object _lock = new();
    private long _offset;

    private SessionRecorder(SafeFileHandle file) => _file = file;

    /// <summary>The recorder of this process, or null when recording is off.</summary>
    public static SessionRecorder? Current { get; private set; }

    /// <summary>Opens the file named by VIRTFS_RECORD (truncating it) and makes it <see cref="Current"/>.
    /// Call before confinement. Returns the path, or null when the variable is unset.</summary>
    public static string? StartFromEnvironment()
    {
        string? path = Environment.GetEnvironmentVariable("VIRTFS_RECORD");
        if (string.IsNullOrEmpty(path))
        {
            return null;
        }
        Current = new SessionRecorder(File.OpenHandle(path, FileMode.Create, FileAccess.Write, FileShare.Read));
        return path;
    }

    /// <summary>Ends recording (tests).</summary>
    internal static void Stop()
    {
        Current?.Dispose();
        Current = null;
    }

    public void Record(byte kind, int fdCount, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second = default)
    {
        int length = Math.Min(first.Length + second.Length, MaxRecordBytes);
        byte[] record = new byte[6 + length];
        record[0] = kind;
        record[1] = (byte)Math.Clamp(fdCount, 0, 255);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(2), (uint)length);
        int head = Math.Min(first.Length, length);
        first[..head].CopyTo(record.AsSpan(6));
        second[..(length - head)].CopyTo(record.AsSpan(6 + head));
        lock (_lock)
        {
            RandomAccess.Write(_file, record, _offset);
            _offset += record.Length;
        }
    }

    public void Dispose() => _file.Dispose();
}

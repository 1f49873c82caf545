using Microsoft.Extensions.Logging.Abstractions;
using System.Diagnostics.Metrics;
using VirtFs.Virtio9p.Diagnostics;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Server;
using VirtFs.Virtio9p.Tests.Server;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;
using static VirtFs.ProxyFs.Protocol.Errno;

namespace VirtFs.Virtio9p.Tests.Operability;

/// <summary>--readonly in the 9P server, and the VirtFs.Backend meter (issue 17).</summary>
public sealed class ReadOnlyAndMetricsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("readonly-").FullName;
    private readonly LocalFileSystem _fs;
    private readonly BackendMetrics _metrics = new();

    public ReadOnlyAndMetricsTests()
    {
        File.WriteAllText(Path.Combine(_dir, "f"), "hello");
        Directory.CreateDirectory(Path.Combine(_dir, "d"));
        _fs = new LocalFileSystem(_dir);
    }

    public void Dispose()
    {
        _metrics.Dispose();
        _fs.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private P9TestClient Client(bool readOnly)
    {
        var client = new P9TestClient(new P9Server(_fs, NullLogger.Instance, metrics: _metrics, readOnly: readOnly));
        client.Handshake(0);
        return client;
    }

    [Fact]
    public void Readonly_refuses_every_change_and_allows_reading()
    {
        P9TestClient c = Client(readOnly: true);
        c.Walk(0, 1, "f").Expect(T.Rwalk);
        Assert.Equal(EROFS, c.Call(T.Tlopen, b => b.U32(1).U32(2 /* O_RDWR */)).Errno);
        Assert.Equal(EROFS, c.Call(T.Tlopen, b => b.U32(1).U32(1 /* O_WRONLY */)).Errno);
        Assert.Equal(EROFS, c.Call(T.Tlopen, b => b.U32(1).U32(0x200 /* O_RDONLY|O_TRUNC */)).Errno);
        c.Call(T.Tlopen, b => b.U32(1).U32(0)).Expect(T.Rlopen);
        Assert.Equal(EROFS, c.Call(T.Twrite, b => b.U32(1).U64(0).U32(1).Bytes("x"u8.ToArray())).Errno);
        var read = c.Call(T.Tread, b => b.U32(1).U64(0).U32(100)).Expect(T.Rread);
        Assert.Equal(5u, read.U32());

        c.Walk(0, 2).Expect(T.Rwalk);
        Assert.Equal(EROFS, c.Call(T.Tlcreate, b => b.U32(2).Str("new").U32(2).U32(0x1A4).U32(0)).Errno);
        Assert.Equal(EROFS, c.Call(T.Tmkdir, b => b.U32(0).Str("nd").U32(0x1ED).U32(0)).Errno);
        Assert.Equal(EROFS, c.Call(T.Tunlinkat, b => b.U32(0).Str("f").U32(0)).Errno);
        Assert.Equal(EROFS, c.Call(T.Trenameat, b => b.U32(0).Str("f").U32(0).Str("g")).Errno);
        Assert.Equal(EROFS, c.Call(T.Tsymlink, b => b.U32(0).Str("l").Str("f").U32(0)).Errno);
        Assert.Equal(EROFS, c.Call(T.Tsetattr, b => b.U32(1).U32(1).U32(0x1FF).U32(0).U32(0).U64(0).U64(0).U64(0).U64(0).U64(0)).Errno);
        Assert.Equal(EROFS, c.Call(T.Txattrcreate, b => b.U32(1).Str("user.x").U64(1).U32(0)).Errno);

        Assert.Equal("hello", File.ReadAllText(Path.Combine(_dir, "f")));
        Assert.Equal(["d", "f"], Directory.GetFileSystemEntries(_dir).Select(p => Path.GetFileName(p)!).Order().ToArray());
        Assert.True(_metrics.Errors(EROFS) >= 11);
    }

    [Fact]
    public void Writable_server_is_unaffected()
    {
        P9TestClient c = Client(readOnly: false);
        c.Walk(0, 1, "f").Expect(T.Rwalk);
        c.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen);
        c.Call(T.Twrite, b => b.U32(1).U64(0).U32(3).Bytes("HEL"u8.ToArray())).Expect(T.Rwrite);
        Assert.Equal("HELlo", File.ReadAllText(Path.Combine(_dir, "f")));
    }

    [Fact]
    public void Meter_reports_requests_errors_and_bytes()
    {
        P9TestClient c = Client(readOnly: false);
        c.Walk(0, 1, "f").Expect(T.Rwalk);
        c.Call(T.Tlopen, b => b.U32(1).U32(2)).Expect(T.Rlopen);
        c.Call(T.Twrite, b => b.U32(1).U64(0).U32(3).Bytes("abc"u8.ToArray())).Expect(T.Rwrite);
        c.Call(T.Tread, b => b.U32(1).U64(0).U32(100)).Expect(T.Rread);
        Assert.Equal(2, c.Walk(0, 2, "missing").Errno);
        // The device counts requests; here the server alone runs, so count as the device would.
        _metrics.Started();
        _metrics.Finished((byte)T.Tread, System.Diagnostics.Stopwatch.GetTimestamp() - 1000, System.Diagnostics.Stopwatch.GetTimestamp());

        var seen = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BackendMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string key = instrument.Name + (tags.Length > 0 ? $"[{tags[0].Value}]" : "");
            lock (seen) seen[key] = value;
        });
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.Equal(3, seen["virtfs.bytes.written"]);
        Assert.Equal(5, seen["virtfs.bytes.read"]); // "abclo"
        Assert.Equal(1, seen["virtfs.errors[ENOENT]"]);
        Assert.Equal(1, seen["virtfs.requests[Tread]"]);
        Assert.Equal(0, seen["virtfs.requests.in_flight"]);
        Assert.Contains("virtfs.helper.round_trips", seen.Keys);
        string text = _metrics.Format();
        Assert.Contains("Tread=1", text);
        Assert.Contains("ENOENT=1", text);
        Assert.Contains("bytes: read=5 written=3", text);
    }
}

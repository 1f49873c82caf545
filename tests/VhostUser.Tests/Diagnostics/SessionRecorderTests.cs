using System.Buffers.Binary;
using VirtFs.VhostUser.Diagnostics;

namespace VirtFs.VhostUser.Tests.Diagnostics;

/// <summary>VIRTFS_RECORD (docs/fuzzing.md): every message the front-end sends lands in the file, header and
/// payload, with its fd count, in the order received: the seed corpus of the vhost-user fuzz target.</summary>
public sealed class SessionRecorderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("recorder-test").FullName;

    public void Dispose()
    {
        SessionRecorder.Stop();
        Environment.SetEnvironmentVariable("VIRTFS_RECORD", null);
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task MessagesAreRecordedWithTheirFdCount()
    {
        string file = Path.Combine(_dir, "session.rec");
        Environment.SetEnvironmentVariable("VIRTFS_RECORD", file);
        Assert.Equal(file, SessionRecorder.StartFromEnvironment());

        string socket = Path.Combine(_dir, "vhost.sock");
        using var cts = new CancellationTokenSource();
        Task run = new VhostUserServer(socket, new EchoDevice(), new ListLogger()).RunAsync(cts.Token);
        using (var fe = TestFrontEnd.Connect(socket))
        {
            fe.Send(VhostUserRequestType.GetFeatures, TestFrontEnd.Version, default);
            fe.ExpectU64(VhostUserRequestType.GetFeatures);
            int call = TestFrontEnd.NewEventFd();
            fe.SendU64(VhostUserRequestType.SetVringCall, TestFrontEnd.Version, 0, call);
            Tmds.Linux.LibC.close(call);
            fe.Send(VhostUserRequestType.GetQueueNum, TestFrontEnd.Version, default);
            fe.ExpectU64(VhostUserRequestType.GetQueueNum);
        }
        cts.Cancel();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        SessionRecorder.Stop();

        byte[] data = File.ReadAllBytes(file);
        var records = new List<(byte Kind, byte Fds, uint Request, int Length)>();
        for (int at = 0; at < data.Length;)
        {
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at + 2));
            records.Add((data[at], data[at + 1], BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at + 6)), length));
            at += 6 + length;
        }
        Assert.Equal(
            [
                (SessionRecorder.KindVhostUser, (byte)0, (uint)VhostUserRequestType.GetFeatures, 12),
                (SessionRecorder.KindVhostUser, (byte)1, (uint)VhostUserRequestType.SetVringCall, 20),
                (SessionRecorder.KindVhostUser, (byte)0, (uint)VhostUserRequestType.GetQueueNum, 12),
            ],
            records);
    }
}

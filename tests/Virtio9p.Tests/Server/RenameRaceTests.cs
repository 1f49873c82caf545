using System.Text;
using VirtFs.Virtio9p.FileSystem;
using T = VirtFs.Virtio9p.Protocol.P9MessageType;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Issue 13 item 5: a Twalk or Tlcreate racing a Trename must not leave a fid with the pre-rename path.
/// Checked by path (a clone of the fid, which holds nothing open, is stat'ed by path), against the inode the host
/// has under the name the fid should follow.</summary>
public sealed class RenameRaceTests : IDisposable
{
    private const uint Root = 0;
    private const uint Probe = 999_999;
    private readonly string _dir;
    private readonly LocalFileSystem _local;
    private readonly GatedFileSystem _fs;
    private readonly P9TestClient _client;

    public RenameRaceTests()
    {
        _dir = Directory.CreateTempSubdirectory("p9rename-").FullName;
        _local = new LocalFileSystem(_dir);
        _fs = new GatedFileSystem(_local);
        _client = new P9TestClient(_fs, msize: 8192);
        _client.Handshake(Root);
    }

    public void Dispose()
    {
        _fs.Release.Set();
        _local.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Twalk has read the directory fid's path and is looking up the name when the directory is renamed:
    /// the new fid must name the file at its new place.</summary>
    [Fact]
    public void Walk_racing_a_rename_of_its_directory_follows_the_rename()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "d0"));
        File.WriteAllText(Path.Combine(_dir, "d0", "x"), "");
        _client.Walk(Root, 1, "d0").Expect(T.Rwalk);

        RaceWithRename(GatedFileSystem.Operation.Lstat, c => c.Walk(1, 2, "x").Expect(T.Rwalk));

        Assert.Equal(HostInode("d1/x"), InodeByPath(_client, 2));
    }

    /// <summary>Tlcreate has built the new file's path when its directory is renamed: the fid (and its clones) must
    /// name the created file at its new place.</summary>
    [Fact]
    public void Lcreate_racing_a_rename_of_its_directory_follows_the_rename()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "d0"));
        _client.Walk(Root, 1, "d0").Expect(T.Rwalk);

        RaceWithRename(GatedFileSystem.Operation.Create,
            c => c.Call(T.Tlcreate, b => b.U32(1).Str("new").U32(2).U32(0x1a4).U32(0)).Expect(T.Rlcreate));

        Assert.Equal(HostInode("d1/new"), InodeByPath(_client, 1));
    }

    /// <summary>Walks and creates from several workers against a loop of renames (always to a new name, so a stale
    /// path never becomes right again): afterwards every fid names the file it was made for.</summary>
    [Fact]
    public void Walks_and_creates_against_a_rename_loop_all_name_the_right_file()
    {
        const int Files = 64;
        Directory.CreateDirectory(Path.Combine(_dir, "dir0"));
        for (int i = 0; i < Files; i++)
        {
            File.WriteAllText(Path.Combine(_dir, "dir0", $"x{i}"), "");
        }
        _client.Walk(Root, 1, "dir0").Expect(T.Rwalk);

        int renames = 0;
        using var stop = new CancellationTokenSource();
        var renamer = new Thread(() =>
        {
            var client = new P9TestClient(_client.Server, msize: 8192);
            while (!stop.IsCancellationRequested)
            {
                int from = renames;
                client.Call(T.Trenameat, b => b.U32(Root).Str($"dir{from}").U32(Root).Str($"dir{from + 1}")).Expect(T.Rrenameat);
                renames = from + 1;
            }
        });
        const int Workers = 4, Rounds = 150;
        var failures = new List<string>();
        var workers = Enumerable.Range(0, Workers).Select(w => new Thread(() =>
        {
            var client = new P9TestClient(_client.Server, msize: 8192);
            try
            {
                for (int r = 0; r < Rounds; r++)
                {
                    uint walkFid = (uint)(10 + (w * Rounds + r) * 2);
                    client.Walk(1, walkFid, $"x{r % Files}").Expect(T.Rwalk);
                    client.Walk(1, walkFid + 1).Expect(T.Rwalk);
                    client.Call(T.Tlcreate, b => b.U32(walkFid + 1).Str($"c{w}-{r}").U32(2).U32(0x1a4).U32(0)).Expect(T.Rlcreate);
                }
            }
            catch (Exception e)
            {
                lock (failures)
                {
                    failures.Add(e.Message);
                }
            }
        })).ToArray();
        renamer.Start();
        foreach (Thread t in workers)
        {
            t.Start();
        }
        foreach (Thread t in workers)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(60)));
        }
        stop.Cancel();
        Assert.True(renamer.Join(TimeSpan.FromSeconds(10)));
        Assert.Empty(failures);
        Assert.True(renames > 0);

        string final = $"dir{renames}";
        var wrong = new List<string>();
        for (int w = 0; w < Workers; w++)
        {
            for (int r = 0; r < Rounds; r++)
            {
                uint walkFid = (uint)(10 + (w * Rounds + r) * 2);
                Check(walkFid, $"{final}/x{r % Files}");
                Check(walkFid + 1, $"{final}/c{w}-{r}");
            }
        }
        Assert.True(wrong.Count == 0, $"{wrong.Count} fids name the wrong file after {renames} renames, e.g. {string.Join("; ", wrong.Take(3))}");

        void Check(uint fid, string expected)
        {
            ulong? got = TryInodeByPath(_client, fid, out int errno);
            if (got != HostInode(expected))
            {
                wrong.Add($"fid {fid} for {expected}: {(got is null ? $"errno {errno}" : $"inode {got}")}");
            }
        }
    }

    /// <summary>Runs <paramref name="request"/> on one worker, holds it in the host call named by
    /// <paramref name="gate"/>, renames d0 to d1 from another worker meanwhile, then lets both finish.</summary>
    private void RaceWithRename(GatedFileSystem.Operation gate, Action<P9TestClient> request)
    {
        _fs.GateOn = gate;
        _fs.Armed = true;
        Exception? failure = null;
        var first = new Thread(() => Run(() => request(new P9TestClient(_client.Server, msize: 8192))));
        first.Start();
        Assert.True(_fs.Entered.Wait(TimeSpan.FromSeconds(10)));
        var renamer = new Thread(() => Run(() => new P9TestClient(_client.Server, msize: 8192)
            .Call(T.Trenameat, b => b.U32(Root).Str("d0").U32(Root).Str("d1")).Expect(T.Rrenameat)));
        renamer.Start();
        // Before the fix the rename finishes here, under the request; with the rename lock it waits for it.
        renamer.Join(TimeSpan.FromMilliseconds(300));
        _fs.Release.Set();
        Assert.True(first.Join(TimeSpan.FromSeconds(10)));
        Assert.True(renamer.Join(TimeSpan.FromSeconds(10)));
        Assert.Null(failure);

        void Run(Action action)
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        }
    }

    private ulong HostInode(string relative)
    {
        Assert.Equal(0, _local.Lstat(Encoding.UTF8.GetBytes("/" + relative), out FileStat attributes));
        return attributes.Inode;
    }

    private static ulong InodeByPath(P9TestClient client, uint fid) =>
        TryInodeByPath(client, fid, out int errno) ?? throw new Xunit.Sdk.XunitException($"fid {fid}: errno {errno} by path");

    /// <summary>The inode the fid's path leads to now: a clone (nothing open, so Tgetattr goes by path).</summary>
    private static ulong? TryInodeByPath(P9TestClient client, uint fid, out int errno)
    {
        client.Walk(fid, Probe).Expect(T.Rwalk);
        P9TestClient.Reply reply = client.Call(T.Tgetattr, b => b.U32(Probe).U64(0x7ff));
        client.Call(T.Tclunk, b => b.U32(Probe)).Expect(T.Rclunk);
        errno = reply.Errno;
        if (reply.Type != T.Rgetattr)
        {
            return null;
        }
        reply.U64();
        return reply.Qid().Path;
    }
}

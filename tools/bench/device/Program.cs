using System.Globalization;
using System.Text;
using VirtFs.DeviceBench;

// tools/bench/device.sh: the backend's request path alone, no guest. See RingClient and Floor.
const string Usage = """
    usage: VirtFs.DeviceBench chart --in ratios.tsv --out chart.png
           VirtFs.DeviceBench [--seconds S] [--depths 1,16,128] [--rows read4k,read512k,write4k,write512k,getattr,walk,lookup]
                              [--helper PATH] [--workers N] [--dir DIR] [--markdown FILE] [--modes inline,pool]
      --modes         inline: the queue thread serves what cannot block (the default); pool: every request goes
                      to a worker (the design before issue 14); both run interleaved, row by row, for a fair A/B
      --helper PATH   serve through the real virtfs-proxy-helper (needs root); default: the in-process LocalFileSystem
    """;
if (args.Length > 0 && args[0] == "chart")
{
    return Chart.Run(args); // tools/bench/run.sh's PNG
}
double seconds = 1.0;
int[] depths = [1, 16, 128];
string[] rows = ["read4k", "read512k", "write4k", "write512k", "getattr", "walk", "lookup"];
string? helper = null, markdown = null, baseDir = null;
int workers = 16;
string[] modes = ["inline"];
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--seconds": seconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--depths": depths = Next().Split(',').Select(int.Parse).ToArray(); break;
        case "--rows": rows = Next().Split(','); break;
        case "--helper": helper = Next(); break;
        case "--workers": workers = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--dir": baseDir = Next(); break;
        case "--markdown": markdown = Next(); break;
        case "--modes": modes = Next().Split(','); break;
        case "-h" or "--help": Console.WriteLine(Usage); return 0;
        default: Console.Error.WriteLine($"device bench: unknown option {args[i]}\n{Usage}"); return 2;
    }
}

const long FileSize = 64L << 20;
const int MessageSize = 512000;
// The "512 KiB" rows: the largest whole-page payload a 512000-byte message carries (the Linux cap on virtio).
const int LargeIo = 124 * 4096;
string dir = Path.Combine(baseDir ?? Path.GetTempPath(), $"virtfs-device-bench-{Environment.ProcessId}");
Directory.CreateDirectory(dir);
string export = Path.Combine(dir, "export");
Directory.CreateDirectory(export);
// The parent is 0700 and the export 0755, as docs/security.md asks: the backend's user cannot reach the export by
// path, and guest users are not locked out (the guest checks the export root's own mode).
if (OperatingSystem.IsLinux()) File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
using (var f = File.Create(Path.Combine(export, "data")))
{
    var chunk = new byte[1 << 20];
    new Random(14).NextBytes(chunk);
    for (long done = 0; done < FileSize; done += chunk.Length)
    {
        f.Write(chunk);
    }
}
int maxDepth = depths.Max();
var table = new StringBuilder();
// ratio = req/s over the floor's ops/s; CPU ratio = the floor's CPU per op over the server's CPU per request
// (on a shared machine the second is the steadier one: a multi-threaded server gets more of the cores).
table.AppendLine($"| request | mode | depth | req/s | us/req | server CPU us/req | alloc B/req | GC pause us/req | floor ops/s | floor CPU us/op | ratio | CPU ratio |");
table.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
Console.Error.WriteLine($"device bench: fs={(helper is null ? "local" : "helper")} workers={workers} seconds={seconds} cpus={Environment.ProcessorCount}");
try
{
    var backends = new List<(string Mode, BenchBackend Backend)>();
    foreach (string mode in modes)
    {
        if (mode is not ("inline" or "pool"))
        {
            throw new ArgumentException($"unknown mode {mode}");
        }
        var b = new BenchBackend(dir, export, helper, workers, maxDepth, serveInline: mode == "inline");
        b.OpenSession("data", MessageSize);
        backends.Add((mode, b));
    }
    try
    {
    foreach (string row in rows)
    {
        (Workload workload, int size, string label) = row switch
        {
            "read4k" => (Workload.Read, 4096, "Tread 4 KiB"),
            "read512k" => (Workload.Read, LargeIo, "Tread 496 KiB"),
            "write4k" => (Workload.Write, 4096, "Twrite 4 KiB"),
            "write512k" => (Workload.Write, LargeIo, "Twrite 496 KiB"),
            "getattr" => (Workload.Getattr, 0, "Tgetattr (open fid)"),
            "walk" => (Workload.WalkClunk, 0, "Twalk+Tclunk (1 name)"),
            // Counted per request (3 per lookup); the floor is one statx by name per request.
            "lookup" => (Workload.Lookup, 0, "lookup: Twalk+Tgetattr+Tclunk"),
            _ => throw new ArgumentException($"unknown row {row}"),
        };
        (double floor, double floorCpu) = Floor.Measure(workload, export, "data", size, FileSize, seconds);
        foreach (int depth in depths)
        foreach ((string mode, BenchBackend backend) in backends)
        {
            RingResult r = backend.Client.Run(workload, depth, size, 1, 0, FileSize, seconds);
            double rate = r.Requests / r.Seconds;
            string line = string.Create(CultureInfo.InvariantCulture,
                $"| {label} | {mode} | {depth} | {rate:F0} | {1e6 / rate:F1} | {r.ServerCpuSeconds * 1e6 / r.Requests:F1} | {(double)r.ServerAllocatedBytes / r.Requests:F1} | {r.GcPauseSeconds * 1e6 / r.Requests:F3} | {floor:F0} | {floorCpu * 1e6:F1} | {rate / floor:F2} | {floorCpu * r.Requests / r.ServerCpuSeconds:F2} |");
            table.AppendLine(line);
            Console.Error.WriteLine(line);
        }
    }
    }
    finally
    {
        backends.ForEach(b => b.Backend.Dispose());
    }
}
finally
{
    Directory.Delete(dir, recursive: true);
}
Console.WriteLine(table.ToString());
if (markdown is not null)
{
    File.WriteAllText(markdown, table.ToString());
}
return 0;

using VirtFs.Fuzz;
using VirtFs.Fuzz.Targets;

// virtfs-fuzz: the fuzz targets of issue 13 (see docs/fuzzing.md; tools/fuzz.sh drives them).
//   virtfs-fuzz TARGET                    under afl-fuzz: SharpFuzz's persistent fork server, input on stdin
//   virtfs-fuzz TARGET --replay PATH...   runs each file (or each file of a directory) once; exit 1 and the
//                                         exception plus a hex dump of the input for the first that fails
//   virtfs-fuzz corpus RECORDING OUTDIR   splits a backend recording (VIRTFS_RECORD) into seed inputs
//   virtfs-fuzz seeds TARGET OUTDIR       writes the built-in seeds of TARGET (ring, proxy)
// TARGET: 9p | ring | vhost-user | proxy
if (args.Length >= 3 && args[0] == "corpus")
{
    return Recording.WriteCorpus(args[1], args[2]);
}
if (args.Length >= 3 && args[0] == "seeds")
{
    return Seeds.Write(args[1], args[2]);
}
if (args.Length < 1 || !Targets.Known(args[0]))
{
    Console.Error.WriteLine("usage: virtfs-fuzz 9p|ring|vhost-user|proxy [--replay PATH...] | corpus RECORDING OUTDIR | seeds TARGET OUTDIR");
    return 2;
}
if (args.Length >= 2 && args[1] == "--replay")
{
    using IFuzzTarget replayed = Targets.Create(args[0]);
    return Replay.Run(replayed, args[2..]);
}
// SharpFuzz's coverage map exists only once Fuzzer.Run has started: instrumented code (our assemblies under test)
// must not run before, so the target is made on the first input.
IFuzzTarget? target = null;
string? crashLog = Environment.GetEnvironmentVariable("VIRTFS_FUZZ_CRASH_LOG");
byte[] buffer = [];
SharpFuzz.Fuzzer.Run(stream =>
{
    if (target is null)
    {
        target = Targets.Create(args[0]);
        buffer = new byte[target.MaxInputLength];
    }
    int length = 0;
    int n;
    while (length < buffer.Length && (n = stream.Read(buffer, length, buffer.Length - length)) > 0)
    {
        length += n;
    }
    try
    {
        target.Execute(buffer.AsSpan(0, length));
    }
    catch (Exception e) when (crashLog is not null)
    {
        // afl-fuzz keeps the input but not our stderr: keep the exception too, for findings that depend on what
        // earlier inputs of this persistent process did and so do not reproduce alone.
        File.AppendAllText(crashLog, $"--- {DateTime.UtcNow:O} input {Convert.ToHexString(System.Security.Cryptography.SHA1.HashData(buffer.AsSpan(0, length)))} ({length} bytes)\n{e}\n{Convert.ToHexString(buffer.AsSpan(0, Math.Min(length, 2048)))}\n");
        throw;
    }
});
target?.Dispose();
return 0;

internal static class Targets
{
    public static bool Known(string name) => name is "9p" or "ring" or "vhost-user" or "proxy";

    public static IFuzzTarget Create(string name) => name switch
    {
        "9p" => new P9Target(),
        "ring" => new RingTarget(),
        "vhost-user" => new VhostUserTarget(),
        "proxy" => new ProxyTarget(),
        _ => throw new ArgumentException($"unknown target {name}", nameof(name)),
    };
}

using VirtFs.Fuzz.Targets;

namespace VirtFs.Fuzz;

/// <summary>Runs saved inputs once each, outside afl-fuzz: how a crash is reproduced and printed.</summary>
internal static class Replay
{
    public static int Run(IFuzzTarget target, string[] paths)
    {
        int count = 0;
        foreach (string file in paths.SelectMany<string, string>(p => Directory.Exists(p)
                     ? Directory.EnumerateFiles(p).Where(f => !Path.GetFileName(f).StartsWith('.') && Path.GetFileName(f) != "README.txt").Order()
                     : [p]))
        {
            byte[] input = File.ReadAllBytes(file);
            try
            {
                target.Execute(input.AsSpan(0, Math.Min(input.Length, target.MaxInputLength)));
                count++;
            }
            catch (Exception e)
            {
                Console.WriteLine($"CRASH {file} ({input.Length} bytes): {e}");
                Console.WriteLine(Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 4096))));
                return 1;
            }
        }
        Console.WriteLine($"replayed {count} input(s) without a finding");
        return 0;
    }
}

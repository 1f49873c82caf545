using System.Reflection;
using System.Diagnostics.CodeAnalysis;

namespace VirtFs.Helper;

/// <summary>
/// Under the JIT (`dotnet virtfs-proxy-helper.dll`, used by tests) assemblies load lazily from the host's
/// filesystem, which is out of reach after chroot. Load every referenced assembly before the sandbox.
/// A Native AOT build has nothing to load and skips this.
/// </summary>
internal static class Preload
{
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Only runs from an IL assembly file (JIT), never in the AOT build.")]
    [UnconditionalSuppressMessage("SingleFile", "IL3000", Justification = "An empty Location is exactly the AOT case we detect.")]
    public static void Assemblies()
    {
        // Not RuntimeFeature.IsDynamicCodeSupported: PublishAot=true turns that switch off for JIT runs too.
        if (string.IsNullOrEmpty(typeof(Preload).Assembly.Location)) return;
        var seen = new HashSet<string>();
        var queue = new Queue<Assembly>();
        queue.Enqueue(typeof(Preload).Assembly);
        while (queue.Count > 0)
        {
            var a = queue.Dequeue();
            foreach (var name in a.GetReferencedAssemblies())
            {
                if (!seen.Add(name.FullName)) continue;
                try { queue.Enqueue(Assembly.Load(name)); } catch (Exception) { /* a facade missing from this runtime: nothing to preload */ }
            }
        }
    }
}

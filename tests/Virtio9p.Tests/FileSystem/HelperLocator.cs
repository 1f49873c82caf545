namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>
/// Finds the built helper (virtfs-proxy-helper.dll) without making this test project depend on src/Helper:
/// $VIRTFS_HELPER_DLL, next to the tests, or the Helper project's output in the same artifacts tree
/// (ArtifactsPath/bin/VirtFs.Helper/&lt;pivot&gt;/), newest first.
/// </summary>
internal static class HelperLocator
{
    private const string DllName = "virtfs-proxy-helper.dll";
    private static readonly Lazy<string?> s_path = new(Find);

    public static string? DllPath => s_path.Value;

    public static string? SkipReason => DllPath is null
        ? $"the helper is not built: no {DllName} in $VIRTFS_HELPER_DLL, next to the tests, or under <ArtifactsPath>/bin/VirtFs.Helper/ " +
          "(build it with `dotnet build src/Helper -p:ArtifactsPath=<same path as the tests>`)"
        : null;

    private static string? Find()
    {
        string? env = Environment.GetEnvironmentVariable("VIRTFS_HELPER_DLL");
        if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
        string here = AppContext.BaseDirectory;
        string local = Path.Combine(here, DllName);
        if (File.Exists(local)) return local;
        // here = <artifacts>/bin/VirtFs.Virtio9p.Tests/<pivot>/
        DirectoryInfo? pivot = new DirectoryInfo(here.TrimEnd('/'));
        DirectoryInfo? bin = pivot.Parent?.Parent;
        string helperBin = bin is null ? "" : Path.Combine(bin.FullName, "VirtFs.Helper");
        if (!Directory.Exists(helperBin)) return null;
        return Directory.EnumerateFiles(helperBin, DllName, SearchOption.AllDirectories)
            .Where(p => File.Exists(Path.Combine(Path.GetDirectoryName(p)!, "virtfs-proxy-helper.runtimeconfig.json")))
            .OrderByDescending(File.GetLastWriteTimeUtc)
            .FirstOrDefault();
    }
}

using System.Reflection;

namespace VirtFs.Common;

/// <summary>The version both executables print: the assembly's informational version (Directory.Build.props
/// &lt;Version&gt;, which tools/package.sh also uses for the .deb), without the commit hash the SDK appends.</summary>
public static class ProgramVersion
{
    public static string Text { get; } = Read();

    private static string Read()
    {
        string? version = typeof(ProgramVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (string.IsNullOrEmpty(version))
        {
            return "unknown";
        }
        int plus = version.IndexOf('+');
        return plus < 0 ? version : version[..plus];
    }
}

using VirtFs.Virtio9p.Confinement;

namespace VirtFs.Virtio9p.Tests.Confinement;

public class SeccompOptionTests
{
    private static readonly string[] Required = ["--socket-path", "/run/v.sock", "--tag", "t", "--helper-fd", "3"];

    [Theory]
    [InlineData(new string[0], SeccompMode.Kill)]
    [InlineData(new[] { "--seccomp=kill" }, SeccompMode.Kill)]
    [InlineData(new[] { "--seccomp=log" }, SeccompMode.Log)]
    [InlineData(new[] { "--seccomp", "none" }, SeccompMode.None)]
    [InlineData(new[] { "--seccomp", "log" }, SeccompMode.Log)]
    public void Seccomp_option_parses(string[] extra, SeccompMode expected)
    {
        Assert.Equal(expected, BackendOptions.Parse([.. Required, .. extra]).Seccomp);
    }

    [Theory]
    [InlineData("--seccomp=")]
    [InlineData("--seccomp=trap")]
    [InlineData("--seccomp=KILL")]
    [InlineData("--seccomp")]
    public void Bad_seccomp_values_are_refused(string arg)
    {
        OptionsException e = Assert.Throws<OptionsException>(() => BackendOptions.Parse([.. Required, arg]));
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Usage_documents_the_option()
    {
        Assert.Contains("--seccomp kill|log|none", BackendOptions.Usage);
    }
}

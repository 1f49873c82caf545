using VirtFs.Virtio9p.FileSystem;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>Rootless mode's command line (issue 16): --shared-dir instead of a helper, --security-model with it.</summary>
public class SharedDirOptionTests
{
    private static readonly string[] Base = ["--socket-path", "/run/v.sock", "--tag", "t"];

    [Theory]
    [InlineData(new[] { "--shared-dir", "/srv/x" }, SecurityModel.MappedXattr)]
    [InlineData(new[] { "--shared-dir", "/srv/x", "--security-model", "mapped-xattr" }, SecurityModel.MappedXattr)]
    [InlineData(new[] { "--security-model", "none", "--shared-dir", "/srv/x" }, SecurityModel.None)]
    public void Shared_dir_parses_with_its_model(string[] extra, SecurityModel expected)
    {
        BackendOptions options = BackendOptions.Parse([.. Base, .. extra]);
        Assert.Equal("/srv/x", options.SharedDir);
        Assert.Equal(expected, options.SecurityModel);
        Assert.Null(options.HelperSocket);
    }

    [Theory]
    [InlineData("--shared-dir", "/srv/x", "--helper-fd", "3")]               // two sources
    [InlineData("--shared-dir", "/srv/x", "--helper-socket", "/run/h.sock")]
    [InlineData("--helper-fd", "3", "--security-model", "none")]             // a model without --shared-dir
    [InlineData("--shared-dir", "/srv/x", "--security-model", "passthrough")] // passthrough is the helper's
    [InlineData("--shared-dir", "/srv/x", "--security-model", "mapped-file")]
    [InlineData("--shared-dir", "", "--security-model", "none")]
    public void Conflicting_or_unknown_choices_are_refused(params string[] extra)
    {
        OptionsException e = Assert.Throws<OptionsException>(() => BackendOptions.Parse([.. Base, .. extra]));
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Usage_documents_the_options()
    {
        Assert.Contains("--shared-dir DIR", BackendOptions.Usage);
        Assert.Contains("--security-model", BackendOptions.Usage);
    }
}

namespace VirtFs.Virtio9p.Tests.Operability;

/// <summary>The backend's command line, config file and environment (issue 17).</summary>
public sealed class BackendOptionsTests : IDisposable
{
    private static readonly string[] Required = ["--socket-path", "/run/v.sock", "--tag", "t", "--helper-fd", "3"];
    private readonly string _dir = Directory.CreateTempSubdirectory("options-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("--bogus")]
    [InlineData("-x")]
    [InlineData("stray")]
    [InlineData("--tag")]
    [InlineData("--thread-pool-size", "0")]
    [InlineData("--thread-pool-size", "many")]
    [InlineData("--log-level", "verbose")]
    [InlineData("--log-format", "xml")]
    [InlineData("--readonly=maybe")]
    [InlineData("--fd", "2")]
    public void Bad_usage_is_one_line(params string[] extra)
    {
        OptionsException e = Assert.Throws<OptionsException>(() => BackendOptions.Parse([.. Required, .. extra]));
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Missing_and_conflicting_options_are_named()
    {
        Assert.Contains("--tag", Assert.Throws<OptionsException>(() =>
            BackendOptions.Parse(["--socket-path", "/s", "--helper-fd", "3"])).Message);
        Assert.Contains("--socket-path", Assert.Throws<OptionsException>(() =>
            BackendOptions.Parse(["--tag", "t", "--helper-fd", "3"])).Message);
        Assert.Contains("not both", Assert.Throws<OptionsException>(() =>
            BackendOptions.Parse([.. Required, "--fd", "3"])).Message);
        Assert.Contains("exactly one", Assert.Throws<OptionsException>(() =>
            BackendOptions.Parse([.. Required, "--helper-socket", "/h"])).Message);
    }

    [Fact]
    public void Virtiofsd_names_parse()
    {
        BackendOptions o = BackendOptions.Parse(["--fd", "3", "--tag", "t", "--helper-socket", "/h", "--thread-pool-size", "4",
            "--log-level", "debug", "--readonly", "--syslog", "--seccomp=log", "--log-format=json"]);
        Assert.Equal(3, o.ListenFd);
        Assert.Null(o.SocketPath);
        Assert.Equal(4, o.Workers);
        Assert.Equal(LogLevelOption.Debug, o.LogLevel);
        Assert.True(o.ReadOnly);
        Assert.True(o.Syslog);
        Assert.Equal(LogFormat.Json, o.LogFormat);
    }

    [Fact]
    public void Help_and_version_need_nothing_else()
    {
        Assert.True(BackendOptions.Parse(["--help"]).Help);
        Assert.True(BackendOptions.Parse(["-V"]).Version);
        Assert.Matches(@"^vhost-user-9p \d+\.\d+\.\d+$", BackendOptions.VersionText);
    }

    [Fact]
    public void Help_lists_every_option()
    {
        foreach (string option in new[] { "--socket-path", "--fd", "--socket-group", "--tag", "--thread-pool-size",
            "--log-level", "--log-format", "--syslog", "--seccomp", "--readonly", "--print-qemu-args", "--config",
            "--helper-socket", "--helper-fd", "--version", "--help" })
        {
            Assert.Contains(option + " ", BackendOptions.Usage);
        }
    }

    [Fact]
    public void Command_line_beats_environment_beats_config_file()
    {
        string file = Path.Combine(_dir, "backend.json");
        File.WriteAllText(file, """{ "socket-path": "/file.sock", "tag": "fromfile", "helper-fd": "3", "thread-pool-size": "2" }""");
        var environment = new Dictionary<string, string> { ["VIRTFS_CONFIG"] = file, ["VIRTFS_TAG"] = "fromenv" };

        BackendOptions o = BackendOptions.Parse([], environment);
        Assert.Equal("/file.sock", o.SocketPath);
        Assert.Equal("fromenv", o.Tag);
        Assert.Equal(2, o.Workers);

        o = BackendOptions.Parse(["--tag", "fromargs", "--thread-pool-size", "8"], environment);
        Assert.Equal("fromargs", o.Tag);
        Assert.Equal(8, o.Workers);
    }

    [Fact]
    public void Config_file_errors_are_usage_errors()
    {
        string file = Path.Combine(_dir, "bad.json");
        File.WriteAllText(file, """{ "tga": "x" }""");
        Assert.Contains("'tga'", Assert.Throws<OptionsException>(() => BackendOptions.Parse(["--config", file], new Dictionary<string, string>())).Message);
        File.WriteAllText(file, "{ not json");
        Assert.DoesNotContain('\n', Assert.Throws<OptionsException>(() => BackendOptions.Parse(["--config", file], new Dictionary<string, string>())).Message);
        Assert.Contains("does not exist", Assert.Throws<OptionsException>(() =>
            BackendOptions.Parse(["--config", Path.Combine(_dir, "missing.json")], new Dictionary<string, string>())).Message);
        // A command-line-only option is refused in the file.
        File.WriteAllText(file, """{ "print-qemu-args": "true" }""");
        Assert.Throws<OptionsException>(() => BackendOptions.Parse(["--config", file], new Dictionary<string, string>()));
    }
}

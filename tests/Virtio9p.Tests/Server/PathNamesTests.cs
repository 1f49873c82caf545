using System.Text;
using VirtFs.Virtio9p.Server;

namespace VirtFs.Virtio9p.Tests.Server;

public class PathNamesTests
{
    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    [Theory]
    [InlineData("/", "a", "/a")]
    [InlineData("/a", "b", "/a/b")]
    [InlineData("/a/b", "c d", "/a/b/c d")]
    public void Join(string dir, string name, string expected) =>
        Assert.Equal(expected, S(PathNames.Join(Encoding.UTF8.GetBytes(dir), Encoding.UTF8.GetBytes(name))));

    [Theory]
    [InlineData("/", "/")]
    [InlineData("/a", "/")]
    [InlineData("/a/b", "/a")]
    public void Parent_of_root_is_root(string path, string expected) =>
        Assert.Equal(expected, S(PathNames.Parent(Encoding.UTF8.GetBytes(path))));

    [Theory]
    [InlineData("", -22)]
    [InlineData("a/b", -22)]
    [InlineData("/", -22)]
    [InlineData("a\0b", -22)]
    [InlineData("ok", 0)]
    [InlineData("..", 0)]
    public void Check_names(string name, int expected) =>
        Assert.Equal(expected, PathNames.Check(Encoding.UTF8.GetBytes(name)));

    [Fact]
    public void Name_longer_than_name_max_is_enametoolong() =>
        Assert.Equal(-36, PathNames.Check(new byte[256].AsSpan().ToArray().Select(_ => (byte)'x').ToArray()));

    [Theory]
    [InlineData("/a/b", "/a", true)]
    [InlineData("/a", "/a", true)]
    [InlineData("/ab", "/a", false)]
    [InlineData("/x", "/", true)]
    public void IsAtOrBelow(string path, string prefix, bool expected) =>
        Assert.Equal(expected, PathNames.IsAtOrBelow(Encoding.UTF8.GetBytes(path), Encoding.UTF8.GetBytes(prefix)));
}

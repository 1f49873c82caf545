using Tmds.Linux;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Host page cache control for the tests of reads that must not wait on the disk.</summary>
internal static class PageCache
{
    /// <summary>Where scratch files the page cache can drop go: /var/tmp, not /tmp, which may be a tmpfs (its
    /// pages are the file).</summary>
    public const string Root = "/var/tmp";

    /// <summary>A new scratch directory under <see cref="Root"/>.</summary>
    public static string ScratchDirectory(string prefix) =>
        Directory.CreateDirectory(Path.Combine(Root, $"{prefix}{Guid.NewGuid():N}")).FullName;

    /// <summary>Drops the file's pages from the host page cache (written back first: dirty pages stay).</summary>
    public static void Evict(string path)
    {
        using var host = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        int fd = (int)host.DangerousGetHandle();
        Assert.Equal(0, LibC.fsync(fd));
        Assert.Equal(0, LibC.posix_fadvise(fd, 0, 0, LibC.POSIX_FADV_DONTNEED));
    }
}

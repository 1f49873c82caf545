using Tmds.Linux;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>Host page cache control for the tests of reads that must not wait on the disk.</summary>
internal static unsafe class PageCache
{
    public const int PageSize = 4096;

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

    /// <summary>Which of the file's first <paramref name="pages"/> pages the host page cache holds now (mincore on a
    /// shared read-only mapping, which itself brings no page in).</summary>
    public static bool[] Cached(string path, int pages)
    {
        using var host = File.OpenHandle(path);
        int fd = (int)host.DangerousGetHandle();
        var length = (size_t)(ulong)(pages * PageSize);
        void* map = LibC.mmap(null, length, LibC.PROT_READ, LibC.MAP_SHARED, fd, 0);
        Assert.True(map != (void*)-1, $"mmap failed: errno {LibC.errno}");
        try
        {
            byte[] vec = new byte[pages];
            // SAFETY: map spans `length` bytes (just mapped); vec holds one byte per page of it.
            fixed (byte* v = vec)
            {
                Assert.Equal(0, LibC.mincore(map, length, v));
            }
            return vec.Select(b => (b & 1) != 0).ToArray();
        }
        finally
        {
            LibC.munmap(map, length);
        }
    }
}

namespace VirtFs.VhostUser.Tests;

/// <summary>Counts this process's fds and mappings by what they point at (/proc/self/fd, fdinfo, maps), so a test
/// can tell whether the backend in the same process still holds a memfd, a mapping or an eventfd of its front-end
/// while other tests open fds of their own in parallel.</summary>
internal static class FdCensus
{
    /// <summary>Open fds of the memfd named <paramref name="name"/>.</summary>
    public static int MemfdFds(string name) => Fds().Count(fd => Link(fd) == $"/memfd:{name} (deleted)");

    /// <summary>Mappings of the memfd named <paramref name="name"/>.</summary>
    public static int MemfdMappings(string name) =>
        File.ReadAllLines("/proc/self/maps").Count(l => l.EndsWith($"/memfd:{name} (deleted)", StringComparison.Ordinal));

    /// <summary>Open fds of the same eventfd as <paramref name="fd"/> (dup'ed, or received over SCM_RIGHTS).</summary>
    public static int SameEventFd(int fd)
    {
        string? id = EventFdId(fd.ToString());
        Assert.NotNull(id);
        return Fds().Count(f => EventFdId(f) == id);
    }

    private static IEnumerable<string> Fds() => Directory.EnumerateFileSystemEntries("/proc/self/fd").Select(Path.GetFileName)!;

    private static string? Link(string fd)
    {
        try
        {
            return new FileInfo("/proc/self/fd/" + fd).LinkTarget;
        }
        catch (IOException)
        {
            return null; // closed meanwhile
        }
    }

    private static string? EventFdId(string fd)
    {
        try
        {
            return File.ReadLines("/proc/self/fdinfo/" + fd).FirstOrDefault(l => l.StartsWith("eventfd-id:", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Polls <paramref name="condition"/> until true or the timeout.</summary>
    public static bool Eventually(Func<bool> condition, int timeoutMs = 10000)
    {
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            Thread.Sleep(10);
        }
        return true;
    }
}

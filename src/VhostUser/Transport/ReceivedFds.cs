namespace VirtFs.VhostUser;

/// <summary>
/// The fds that came with one message. Each is owned here until a handler takes it; Dispose closes whatever is
/// left, so a rejected or unknown message never leaks an fd.
/// </summary>
internal sealed class ReceivedFds : IDisposable
{
    private readonly FdHandle?[] _fds = new FdHandle?[VhostUserLimits.MaxFds];

    public int Count { get; private set; }

    /// <summary>Takes ownership of <paramref name="fd"/>; returns false (and closes it) past the per-message cap.</summary>
    public bool Add(int fd)
    {
        if (Count == _fds.Length)
        {
            // A message split over several recvmsg calls can bring MaxFds each time: close the surplus.
            new FdHandle(fd).Dispose();
            return false;
        }
        _fds[Count++] = new FdHandle(fd);
        return true;
    }

    /// <summary>Transfers ownership of fd <paramref name="index"/> to the caller.</summary>
    public FdHandle Take(int index)
    {
        FdHandle fd = _fds[index] ?? throw new InvalidOperationException($"fd {index} already taken");
        _fds[index] = null;
        return fd;
    }

    public void Dispose()
    {
        for (int i = 0; i < Count; i++)
        {
            _fds[i]?.Dispose();
            _fds[i] = null;
        }
        Count = 0;
    }
}

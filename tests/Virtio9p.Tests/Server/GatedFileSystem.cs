using Microsoft.Win32.SafeHandles;
using VirtFs.Virtio9p.FileSystem;
using VirtFs.Virtio9p.Tests.FileSystem;

namespace VirtFs.Virtio9p.Tests.Server;

/// <summary>A filesystem that can hold one Open (or Lstat, or Create) until the test lets it go, to put another
/// request deterministically in the middle of a handler.</summary>
internal sealed class GatedFileSystem(IFileSystem inner) : ForwardingFileSystem(inner)
{
    public enum Operation { Open, Lstat, Create }

    /// <summary>When set, the next <see cref="GateOn"/> operation signals <see cref="Entered"/>, waits for
    /// <see cref="Release"/>, then (an Open) answers <see cref="OpenResult"/> or does the real call when that is 0.</summary>
    public volatile bool Armed;
    public Operation GateOn = Operation.Open;
    public int OpenResult;
    public ManualResetEventSlim Entered { get; } = new();
    public ManualResetEventSlim Release { get; } = new();

    private bool Gate(Operation operation)
    {
        if (!Armed || GateOn != operation)
        {
            return false;
        }
        Armed = false;
        Entered.Set();
        Release.Wait(TimeSpan.FromSeconds(10));
        return true;
    }

    public override int Open(ReadOnlySpan<byte> path, int flags, out SafeFileHandle? fd)
    {
        if (Gate(Operation.Open) && OpenResult < 0)
        {
            fd = null;
            return OpenResult;
        }
        return Inner.Open(path, flags, out fd);
    }

    public override int Create(ReadOnlySpan<byte> path, int flags, uint mode, uint uid, uint gid, out SafeFileHandle? fd)
    {
        Gate(Operation.Create);
        return Inner.Create(path, flags, mode, uid, gid, out fd);
    }

    public override int Lstat(ReadOnlySpan<byte> path, out FileStat attributes)
    {
        Gate(Operation.Lstat);
        return Inner.Lstat(path, out attributes);
    }
}

using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using VirtFs.DeviceBench.Interop;
using static Tmds.Linux.LibC;

namespace VirtFs.DeviceBench;

/// <summary>
/// The floor: the syscall each request ends in (preadv/pwritev with one iovec per 4 KiB page, statx on the open
/// fd, statx by name in the directory), called in a plain loop on one thread. Server overhead is the distance
/// from here.
/// </summary>
internal static unsafe class Floor
{
    /// <summary>Operations per second of <paramref name="workload"/> done directly for about
    /// <paramref name="seconds"/>, and the CPU seconds each took (the fair comparison on a busy machine).</summary>
    public static (double Rate, double CpuPerOp) Measure(Workload workload, string export, string file, int size, long fileSize, double seconds)
    {
        byte[] path = Encoding.UTF8.GetBytes(Path.Combine(export, file) + "\0");
        byte[] dirPath = Encoding.UTF8.GetBytes(export + "\0");
        byte[] name = Encoding.UTF8.GetBytes(file + "\0");
        int fd, dir;
        fixed (byte* p = path)
        fixed (byte* d = dirPath)
        {
            fd = open(p, O_RDWR | O_CLOEXEC);
            dir = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (fd < 0 || dir < 0)
        {
            throw new InvalidOperationException($"floor: cannot open {file}: errno {errno}");
        }
        byte* buffer = (byte*)NativeMemory.AlignedAlloc(RingClient.MaxPayload, RingClient.PageSize);
        int pages = Math.Max(1, size / RingClient.PageSize);
        iovec* iov = stackalloc iovec[pages];
        for (int i = 0; i < pages; i++)
        {
            iov[i].iov_base = buffer + i * RingClient.PageSize;
            iov[i].iov_len = RingClient.PageSize;
        }
        try
        {
            long done = 0;
            long start = Stopwatch.GetTimestamp();
            long cpu0 = Clock.CpuNanoseconds(Clock.ThreadCpuTime);
            long deadline = start + (long)(seconds * Stopwatch.Frequency);
            statx st;
            byte empty = 0;
            fixed (byte* n = name)
            {
                while (true)
                {
                    for (int batch = 0; batch < 64; batch++, done++)
                    {
                        long offset = done * size % Math.Max(size, fileSize - size);
                        long r = workload switch
                        {
                            Workload.Read => Vectored.Preadv(fd, iov, pages, offset),
                            Workload.Write => Vectored.Pwritev(fd, iov, pages, offset),
                            Workload.Getattr => statx(fd, &empty, 0x1000 /* AT_EMPTY_PATH */, 0xfff, &st),
                            _ => statx(dir, n, AT_SYMLINK_NOFOLLOW, 0xfff, &st),
                        };
                        if (r < 0)
                        {
                            throw new InvalidOperationException($"floor {workload}: errno {Marshal.GetLastPInvokeError()}");
                        }
                    }
                    if (Stopwatch.GetTimestamp() >= deadline)
                    {
                        break;
                    }
                }
            }
            double cpu = (Clock.CpuNanoseconds(Clock.ThreadCpuTime) - cpu0) / 1e9;
            return (done / Stopwatch.GetElapsedTime(start).TotalSeconds, cpu / done);
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
            close(fd);
            close(dir);
        }
    }
}

using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using Tmds.Linux;
using VirtFs.VhostUser;
using static Tmds.Linux.LibC;

namespace VirtFs.Fuzz.Targets;

/// <summary>
/// The vhost-user message handler (<see cref="Connection"/>) over a real unix socket, with the fds the front-end
/// would pass. An input is a sequence of records, each <c>u8 fds; 12-byte header; payload</c> where the payload
/// is header.size bytes (fewer if the input ends first: the socket then closes mid-message). The low three bits
/// of <c>fds</c> give how many fds ride with the record (SCM_RIGHTS) and bits 6-7 their kind: 0 a fresh eventfd,
/// 1 the guest-memory memfd (1 GiB, sparse, as QEMU's memfd guest RAM), 2 an empty memfd (a region past the end
/// of its file), 3 /dev/null (not an eventfd, not mappable). A recorded QEMU session converts to this format as
/// it is (see <see cref="Recording"/>).
///
/// The whole input is written to the socket, the write side shut, and the handler runs until it closes the
/// connection, while a thread drains its replies. Findings: an exception out of Run (it must turn every
/// violation into a closed connection), a handler that does not return (afl-fuzz's hang timeout), and an fd
/// left open after the connection ended.
/// </summary>
internal sealed unsafe class VhostUserTarget : IFuzzTarget
{
    private const long GuestRamSize = 1L << 30;
    private const int MaxFdsPerInput = 32;
    private readonly int _guestRam;
    private readonly EchoDevice _device = new();

    public VhostUserTarget()
    {
        byte* name = stackalloc byte[] { (byte)'r', (byte)'a', (byte)'m', 0 };
        _guestRam = memfd_create(name, MFD_CLOEXEC);
        if (_guestRam < 0)
        {
            throw new InvalidOperationException($"memfd_create: errno {errno}");
        }
        // The runtime opens fds of its own on first use (thread pool, signal handling): let it, before counting.
        Execute([], checkFds: false);
        Execute([], checkFds: false);
    }

    public int MaxInputLength => 32768;

    public void Execute(ReadOnlySpan<byte> input) => Execute(input, checkFds: true);

    private void Execute(ReadOnlySpan<byte> input, bool checkFds)
    {
        // Fresh (zero) guest RAM for every input: whatever a previous run's queue wrote is gone.
        ftruncate(_guestRam, 0);
        ftruncate(_guestRam, GuestRamSize);
        int before = OpenFdCount();
        int* pair = stackalloc int[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        {
            throw new InvalidOperationException($"socketpair: errno {errno}");
        }
        int front = pair[0];
        var stop = EventFd.Create();
        try
        {
            // The whole input fits the socket buffer (MaxInputLength < SO_SNDBUF), so nothing blocks here.
            SendAll(front, input);
            shutdown(front, SHUT_WR);
            var drain = new Thread(() => Drain(front)) { IsBackground = true, Name = "fuzz-drain" };
            drain.Start();
            using (var connection = new Connection(new MessageChannel(new FdHandle(pair[1]), stop), _device, NullLogger.Instance))
            {
                connection.Run();
            }
            drain.Join();
        }
        finally
        {
            close(front);
            stop.Dispose();
        }
        int after = OpenFdCount();
        if (checkFds && after != before)
        {
            throw new FuzzFindingException($"{after - before} fd(s) still open after the connection ended: {OpenFds()}");
        }
    }

    private void SendAll(int socket, ReadOnlySpan<byte> input)
    {
        int fdsSent = 0;
        Span<int> fds = stackalloc int[8];
        while (input.Length > 0)
        {
            byte spec = input[0];
            input = input[1..];
            int header = Math.Min(input.Length, MessageHeader.Length);
            int size = header == MessageHeader.Length ? (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(input[8..]), int.MaxValue) : 0;
            int length = header + Math.Min(size, input.Length - header);
            int count = Math.Min(spec & 7, MaxFdsPerInput - fdsSent);
            for (int i = 0; i < count; i++)
            {
                fds[i] = MakeFd(spec >> 6);
            }
            fdsSent += count;
            try
            {
                Send(socket, input[..length], fds[..count]);
            }
            finally
            {
                for (int i = 0; i < count; i++)
                {
                    close(fds[i]);
                }
            }
            input = input[length..];
        }
    }

    private int MakeFd(int kind)
    {
        byte* name = stackalloc byte[] { (byte)'e', 0 };
        byte* devNull = stackalloc byte[] { (byte)'/', (byte)'d', (byte)'e', (byte)'v', (byte)'/', (byte)'n', (byte)'u', (byte)'l', (byte)'l', 0 };
        int fd = kind switch
        {
            0 => eventfd(0, EFD_CLOEXEC),
            1 => dup(_guestRam),
            2 => memfd_create(name, MFD_CLOEXEC),
            _ => open(devNull, O_RDWR | O_CLOEXEC),
        };
        if (fd < 0)
        {
            throw new InvalidOperationException($"fd of kind {kind}: errno {errno}");
        }
        return fd;
    }

    private static void Send(int socket, ReadOnlySpan<byte> bytes, ReadOnlySpan<int> fds)
    {
        if (bytes.Length == 0)
        {
            return;
        }
        fixed (byte* b = bytes)
        {
            iovec iov = default;
            iov.iov_base = b;
            iov.iov_len = bytes.Length;
            msghdr msg = default;
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            int controlLength = CMSG_SPACE(sizeof(int) * 8);
            byte* control = stackalloc byte[controlLength];
            new Span<byte>(control, controlLength).Clear();
            if (fds.Length > 0)
            {
                msg.msg_control = control;
                msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.Length);
                cmsghdr* c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                // Not CMSG_LEN: Tmds.LibC 0.5.0's CMSG_LEN(4) is aligned to 24, which would send an extra fd 0.
                c->cmsg_len = sizeof(cmsghdr) + sizeof(int) * fds.Length;
                int* data = (int*)CMSG_DATA(c);
                for (int i = 0; i < fds.Length; i++)
                {
                    data[i] = fds[i];
                }
            }
            // SAFETY: iov and control point to live buffers of the stated lengths for the duration of the call.
            long n = sendmsg(socket, &msg, MSG_NOSIGNAL);
            if (n != bytes.Length)
            {
                throw new InvalidOperationException($"sendmsg sent {n} of {bytes.Length}: errno {errno}");
            }
        }
    }

    private static void Drain(int socket)
    {
        byte* buffer = stackalloc byte[4096];
        while (true)
        {
            long n = recv(socket, buffer, 4096, 0);
            if (n > 0 || (n < 0 && errno == EINTR))
            {
                continue;
            }
            return;
        }
    }

    /// <summary>The fds this target's fd kinds and the connection can leave behind (the runtime opens assemblies
    /// lazily, so those are not counted).</summary>
    private static int OpenFdCount() => Directory.GetFiles("/proc/self/fd").Count(f => new FileInfo(f).LinkTarget is { } t
        && (t.StartsWith("anon_inode:", StringComparison.Ordinal) || t.StartsWith("/memfd:", StringComparison.Ordinal)
            || t.StartsWith("socket:", StringComparison.Ordinal) || t == "/dev/null"));

    private static string OpenFds() => string.Join(", ", Directory.GetFiles("/proc/self/fd")
        .Select(f => $"{Path.GetFileName(f)}->{(new FileInfo(f).LinkTarget ?? "?")}"));

    public void Dispose() => close(_guestRam);

    /// <summary>Completes every request at once with its readable bytes copied into its writable part.</summary>
    private sealed class EchoDevice : IVirtioDevice
    {
        private readonly byte[] _buffer = new byte[1 << 16];
        public ulong DeviceFeatures => 1;
        public int QueueCount => 1;
        public ReadOnlyMemory<byte> Config { get; } = new byte[] { 4, 0, (byte)'f', (byte)'u', (byte)'z', (byte)'z' };

        public void HandleRequest(DescriptorChain request)
        {
            lock (_buffer)
            {
                int n = request.CopyFromReadable(0, _buffer);
                request.Complete(request.CopyToWritable(0, _buffer.AsSpan(0, n)));
            }
        }
    }
}

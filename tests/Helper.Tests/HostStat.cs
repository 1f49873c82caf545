using System.Text;
using Tmds.Linux;

namespace VirtFs.Helper.Tests;

/// <summary>What the host says about a file the helper made: lstat's owner and mode, read as the test process
/// (root), bypassing the helper.</summary>
internal static class HostStat
{
    public static unsafe (uint Uid, uint Gid, uint Mode) Of(string path)
    {
        stat st;
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        // SAFETY: p is NUL-terminated and pinned for the call; st is a local lstat fills.
        fixed (byte* pp = p) Assert.Equal(0, LibC.lstat(pp, &st));
        return ((uint)st.st_uid, (uint)st.st_gid, (ushort)st.st_mode);
    }
}

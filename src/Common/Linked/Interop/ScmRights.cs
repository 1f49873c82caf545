using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace VirtFs.Interop;

/// <summary>
/// SCM_RIGHTS control data (cmsg(3), unix(7)): the arithmetic to build it and a bounded walk to take the fds out
/// of what recvmsg filled, shared by the vhost-user channel and the proxy's open replies so the two cannot
/// disagree. Our own CMSG_* arithmetic (bits/socket.h): Tmds.LibC 0.5.0's CMSG_LEN(4) is 24, not glibc's 20,
/// which on a send makes the kernel read a second, garbage fd from the padding.
/// </summary>
internal static unsafe class ScmRights
{
    /// <summary>CMSG_ALIGN: a multiple of sizeof(size_t).</summary>
    public static int Align(int length) => (length + sizeof(nuint) - 1) & ~(sizeof(nuint) - 1);

    /// <summary>CMSG_LEN: header plus <paramref name="dataLength"/> bytes, unpadded (what cmsg_len holds).</summary>
    public static int Len(int dataLength) => Align(sizeof(cmsghdr)) + dataLength;

    /// <summary>CMSG_SPACE: header plus padded data (what the control buffer needs).</summary>
    public static int Space(int dataLength) => Align(sizeof(cmsghdr)) + Align(dataLength);

    /// <summary>CMSG_DATA.</summary>
    public static byte* Data(cmsghdr* c) => (byte*)c + Align(sizeof(cmsghdr));

    /// <summary>
    /// Takes every fd out of the <paramref name="controlLength"/> bytes of control data the kernel reported
    /// (msg_controllen after recvmsg) into <paramref name="fds"/>; fds past its length are closed at once and
    /// counted in <paramref name="surplus"/>, so every fd that arrived is either the caller's or closed.
    /// <paramref name="foreign"/>: a message that is not SCM_RIGHTS, or a cmsg_len outside the buffer (the walk
    /// stops there rather than read past what the kernel wrote). Returns how many fds were stored.
    /// </summary>
    public static int TakeFds(byte* control, int controlLength, Span<int> fds, out int surplus, out bool foreign)
    {
        int count = 0;
        surplus = 0;
        foreign = false;
        int headerSize = Len(0);
        for (int offset = 0; offset + headerSize <= controlLength;)
        {
            // SAFETY: offset + headerSize <= controlLength, so the header lies inside the caller's buffer.
            cmsghdr* c = (cmsghdr*)(control + offset);
            int length = (int)(uint)c->cmsg_len;
            if (length < headerSize || offset + length > controlLength)
            {
                foreign = true;
                break;
            }
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            {
                foreign = true;
            }
            else
            {
                int* p = (int*)Data(c);
                for (int i = 0; i < (length - headerSize) / sizeof(int); i++)
                {
                    // SAFETY: the kernel wrote these fds inside control[offset .. offset + length).
                    if (count < fds.Length)
                    {
                        fds[count++] = p[i];
                    }
                    else
                    {
                        close(p[i]);
                        surplus++;
                    }
                }
            }
            offset += Align(length);
        }
        return count;
    }
}

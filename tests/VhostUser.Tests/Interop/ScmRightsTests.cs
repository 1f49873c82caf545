using Tmds.Linux;
using VirtFs.Interop;
using static Tmds.Linux.LibC;

namespace VirtFs.VhostUser.Tests.Interop;

/// <summary>The shared SCM_RIGHTS code (src/Common/Linked/Interop/ScmRights.cs, compiled into VhostUser and
/// ProxyFs): glibc's CMSG_* values, and the walk over what the kernel really delivers.</summary>
public sealed unsafe class ScmRightsTests
{
    /// <summary>struct cmsghdr on x86_64 (bits/socket.h): size_t cmsg_len; int cmsg_level; int cmsg_type.
    /// CMSG_LEN(4) is 20 (Tmds.LibC 0.5.0 says 24, which on a send passes a second, garbage fd).</summary>
    [Fact]
    public void Cmsg_arithmetic_matches_glibc()
    {
        Assert.Equal(16, sizeof(cmsghdr));
        // Tmds.LibC's fields are properties: check the offsets through the bytes they write.
        cmsghdr h = default;
        byte* raw = (byte*)&h;
        new Span<byte>(raw, sizeof(cmsghdr)).Fill(0xFF);
        h.cmsg_len = 20; // must clear all eight bytes at offset 0 (size_t)
        h.cmsg_level = 0x66;
        h.cmsg_type = 0x77;
        Assert.Equal(20L, *(long*)raw);
        Assert.Equal(0x66, *(int*)(raw + 8));
        Assert.Equal(0x77, *(int*)(raw + 12));
        Assert.Equal(16, ScmRights.Len(0));
        Assert.Equal(20, ScmRights.Len(sizeof(int)));
        Assert.Equal(24, ScmRights.Len(2 * sizeof(int)));
        Assert.Equal(24, ScmRights.Space(sizeof(int)));
        Assert.Equal(16 + 32, ScmRights.Space(8 * sizeof(int)));
    }

    [Fact]
    public void Fds_sent_over_a_socket_come_out_and_the_surplus_is_closed()
    {
        int* pair = stackalloc int[2];
        Assert.Equal(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair));
        int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC), c = eventfd(0, EFD_CLOEXEC);
        try
        {
            // Send three fds in one SCM_RIGHTS message built with our arithmetic.
            int space = ScmRights.Space(3 * sizeof(int));
            byte* control = stackalloc byte[space];
            new Span<byte>(control, space).Clear();
            var hdr = (cmsghdr*)control;
            hdr->cmsg_len = ScmRights.Len(3 * sizeof(int));
            hdr->cmsg_level = SOL_SOCKET;
            hdr->cmsg_type = SCM_RIGHTS;
            int* data = (int*)ScmRights.Data(hdr);
            data[0] = a; data[1] = b; data[2] = c;
            byte one = 1;
            iovec iov = new() { iov_base = &one, iov_len = 1 };
            msghdr msg = new() { msg_iov = &iov, msg_iovlen = 1, msg_control = control, msg_controllen = space };
            Assert.Equal(1, (long)sendmsg(pair[0], &msg, 0));

            byte* received = stackalloc byte[space];
            byte got = 0;
            iovec riov = new() { iov_base = &got, iov_len = 1 };
            msghdr rmsg = new() { msg_iov = &riov, msg_iovlen = 1, msg_control = received, msg_controllen = space };
            Assert.Equal(1, (long)recvmsg(pair[1], &rmsg, MSG_CMSG_CLOEXEC));

            // Room for two: the third is closed by the walk and counted.
            Span<int> fds = stackalloc int[2];
            int count = ScmRights.TakeFds(received, (int)(uint)rmsg.msg_controllen, fds, out int surplus, out bool foreign);
            Assert.Equal(2, count);
            Assert.Equal(1, surplus);
            Assert.False(foreign);
            foreach (int fd in fds)
            {
                Assert.True(fd >= 0);
                Assert.Equal(0, close(fd));
            }
        }
        finally
        {
            close(a); close(b); close(c);
            close(pair[0]); close(pair[1]);
        }
    }

    [Fact]
    public void A_cmsg_len_past_the_reported_length_stops_the_walk_as_foreign()
    {
        byte* control = stackalloc byte[64];
        new Span<byte>(control, 64).Clear();
        var hdr = (cmsghdr*)control;
        hdr->cmsg_len = 60; // claims more than the 24 bytes reported below
        hdr->cmsg_level = SOL_SOCKET;
        hdr->cmsg_type = SCM_RIGHTS;
        Span<int> fds = stackalloc int[4];
        Assert.Equal(0, ScmRights.TakeFds(control, 24, fds, out int surplus, out bool foreign));
        Assert.Equal(0, surplus);
        Assert.True(foreign);
    }

    [Fact]
    public void A_message_that_is_not_scm_rights_is_foreign_and_yields_no_fd()
    {
        byte* control = stackalloc byte[24];
        new Span<byte>(control, 24).Clear();
        var hdr = (cmsghdr*)control;
        hdr->cmsg_len = ScmRights.Len(sizeof(int));
        hdr->cmsg_level = SOL_SOCKET;
        hdr->cmsg_type = 2; // SCM_CREDENTIALS
        Span<int> fds = stackalloc int[4];
        Assert.Equal(0, ScmRights.TakeFds(control, 24, fds, out _, out bool foreign));
        Assert.True(foreign);
    }
}

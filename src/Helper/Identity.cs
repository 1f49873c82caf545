using Tmds.Linux;
using VirtFs.Helper.Interop;

namespace VirtFs.Helper;

/// <summary>
/// Per-request identity for create-type requests (QEMU virtfs-proxy-helper.c setugid/resetugid): the effective
/// (and so filesystem) uid/gid become the requester's, the saved ids stay 0 so root can be restored.
/// Raw SYS_setresuid/SYS_setresgid: they change only this thread, whereas glibc's setresuid() broadcasts to
/// every thread of this multi-threaded process. Restoring must not fail; if it does, the thread would keep
/// serving other requests under the wrong identity, so the process dies instead.
/// </summary>
internal readonly ref struct Identity
{
    private readonly bool _switched;

    private Identity(bool switched) => _switched = switched;

    /// <summary>Becomes uid/gid for file creation. Returns 0 or -errno (nothing changed on failure).</summary>
    public static int Become(uint uid, uint gid, out Identity identity)
    {
        identity = default;
        // (u32)-1 means "leave unchanged" to setresuid: the request would silently run as root.
        if (uid == uint.MaxValue || gid == uint.MaxValue) return -LibC.EINVAL;
        if (SetResGid(gid) < 0) return -LibC.errno;
        if (SetResUid(uid) < 0)
        {
            int err = LibC.errno;
            if (SetResGid(0) < 0) Die("restore egid");
            return -err;
        }
        if (uid != 0 || gid != 0)
        {
            // capabilities(7): an euid change from 0 to nonzero cleared the effective set. Raise only what a
            // requester keeps (QEMU re-applies its effective set the same way).
            int r = Capabilities.Set(Capabilities.RequesterMask);
            if (r < 0)
            {
                Restore();
                return r;
            }
        }
        identity = new Identity(true);
        return 0;
    }

    public void Dispose()
    {
        if (_switched) Restore();
    }

    private static void Restore()
    {
        // uid first: back to euid 0 the kernel refills the effective set from permitted, and CAP_SETGID is then
        // effective for the gid change.
        if (SetResUid(0) < 0) Die("restore euid");
        if (SetResGid(0) < 0) Die("restore egid");
        if (Capabilities.Set(Capabilities.KeptMask) < 0) Die("restore capabilities");
    }

    private static long SetResUid(uint euid) => (ssize_t)LibC.syscall(Syscalls.SYS_setresuid, -1, unchecked((int)euid), -1);

    private static long SetResGid(uint egid) => (ssize_t)LibC.syscall(Syscalls.SYS_setresgid, -1, unchecked((int)egid), -1);

    private static void Die(string what)
    {
        int err = LibC.errno;
        Log.Error($"cannot {what} (errno {err}); aborting rather than serving with the wrong identity");
        Environment.FailFast($"virtfs-proxy-helper: cannot {what}");
    }
}

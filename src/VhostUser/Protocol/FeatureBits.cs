namespace VirtFs.VhostUser;

/// <summary>Virtio feature bits the backend itself implements (virtio 1.2, 6 "Reserved Feature Bits").</summary>
public static class VirtioFeatures
{
    public const ulong RingIndirectDesc = 1UL << 28;
    public const ulong RingEventIdx = 1UL << 29;
    /// <summary>vhost-user only: the front-end may send GET/SET_PROTOCOL_FEATURES (never passed to the guest).</summary>
    public const ulong VhostUserProtocolFeatures = 1UL << 30;
    public const ulong Version1 = 1UL << 32;
}

/// <summary>vhost-user protocol feature bits (vhost-user.rst, "Protocol features").</summary>
public static class VhostUserProtocolFeatures
{
    public const ulong Mq = 1UL << 0;
    public const ulong LogShmfd = 1UL << 1;
    public const ulong ReplyAck = 1UL << 3;
    public const ulong BackendReq = 1UL << 5;
    public const ulong Config = 1UL << 9;
    public const ulong ResetDevice = 1UL << 13;
    public const ulong ConfigureMemSlots = 1UL << 15;
    public const ulong Status = 1UL << 16;

    /// <summary>What we implement for real. Not LOG_SHMFD: we do not support dirty logging (migration).</summary>
    public const ulong Supported = Mq | ReplyAck | Config | ResetDevice | ConfigureMemSlots | Status;
}

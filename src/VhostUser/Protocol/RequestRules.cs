namespace VirtFs.VhostUser;

/// <summary>
/// What each front-end message may look like before any handler runs: payload size and how many fds it may
/// carry (vhost-user.rst, per message). Anything else ends the connection.
/// </summary>
internal static class RequestRules
{
    /// <summary>Checks header fields that do not depend on the request type.</summary>
    public static void CheckHeader(in MessageHeader h)
    {
        if ((h.Flags & MessageHeader.VersionMask) != MessageHeader.Version1)
        {
            throw new VhostUserProtocolException(VhostUserError.BadVersion, $"version bits {h.Flags & MessageHeader.VersionMask}");
        }
        if ((h.Flags & MessageHeader.ReplyFlag) != 0)
        {
            throw new VhostUserProtocolException(VhostUserError.UnexpectedReplyFlag, $"request {h.Request} marked as a reply");
        }
        if ((h.Flags & ~MessageHeader.KnownFlags) != 0)
        {
            throw new VhostUserProtocolException(VhostUserError.UnknownFlags, $"flags 0x{h.Flags:x}");
        }
        if (h.Size > VhostUserLimits.MaxPayload)
        {
            throw new VhostUserProtocolException(VhostUserError.HeaderTooLarge, $"payload size {h.Size}");
        }
    }

    /// <summary>Checks the payload size and fd count for the request type.</summary>
    public static void CheckBody(in MessageHeader h, int fdCount)
    {
        (bool sizeOk, int minFds, int maxFds) = h.Type switch
        {
            VhostUserRequestType.GetFeatures or VhostUserRequestType.SetOwner or VhostUserRequestType.ResetOwner
                or VhostUserRequestType.GetProtocolFeatures or VhostUserRequestType.GetQueueNum
                or VhostUserRequestType.ResetDevice or VhostUserRequestType.GetMaxMemSlots
                or VhostUserRequestType.GetStatus => (h.Size == 0, 0, 0),
            VhostUserRequestType.SetFeatures or VhostUserRequestType.SetProtocolFeatures
                or VhostUserRequestType.SetStatus => (h.Size == 8, 0, 0),
            VhostUserRequestType.SetVringNum or VhostUserRequestType.SetVringBase
                or VhostUserRequestType.GetVringBase or VhostUserRequestType.SetVringEnable => (h.Size == VringState.Length, 0, 0),
            VhostUserRequestType.SetVringAddr => (h.Size == VringAddress.Length, 0, 0),
            VhostUserRequestType.SetVringKick or VhostUserRequestType.SetVringCall
                or VhostUserRequestType.SetVringErr => (h.Size == 8, 0, 1),
            VhostUserRequestType.SetMemTable => (h.Size >= 8 && h.Size <= 8 + VhostUserLimits.MaxMemTableRegions * MemoryRegionDescription.Length
                && (h.Size - 8) % MemoryRegionDescription.Length == 0, 1, VhostUserLimits.MaxFds),
            VhostUserRequestType.AddMemReg => (h.Size == 8 + MemoryRegionDescription.Length, 1, 1),
            VhostUserRequestType.RemMemReg => (h.Size == 8 + MemoryRegionDescription.Length, 0, 1),
            VhostUserRequestType.SetBackendReqFd => (h.Size == 0, 1, 1),
            VhostUserRequestType.GetConfig or VhostUserRequestType.SetConfig =>
                (h.Size >= ConfigHeader.Length && h.Size <= ConfigHeader.Length + VhostUserLimits.MaxConfigSize, 0, 0),
            // Unsupported or unknown: bounded by CheckHeader; their fds are closed, NEED_REPLY answered with failure.
            _ => (true, 0, VhostUserLimits.MaxFds),
        };
        if (!sizeOk)
        {
            throw new VhostUserProtocolException(VhostUserError.BadPayloadSize, $"{h.Type} with payload size {h.Size}");
        }
        if (fdCount > maxFds)
        {
            throw new VhostUserProtocolException(VhostUserError.UnexpectedFileDescriptors, $"{h.Type} with {fdCount} fds");
        }
        if (fdCount < minFds)
        {
            throw new VhostUserProtocolException(VhostUserError.MissingFileDescriptor, $"{h.Type} with {fdCount} fds");
        }
    }
}

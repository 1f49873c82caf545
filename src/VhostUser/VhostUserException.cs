namespace VirtFs.VhostUser;

/// <summary>What the front-end did wrong. Every value ends the connection.</summary>
public enum VhostUserError
{
    ConnectionClosed,
    ReceiveFailed,
    SendFailed,
    HeaderTooLarge,
    BadVersion,
    UnexpectedReplyFlag,
    UnknownFlags,
    BadPayloadSize,
    UnexpectedFileDescriptors,
    MissingFileDescriptor,
    ControlDataTruncated,
    InvalidMemoryRegion,
    MapFailed,
    TooManyRegions,
    InvalidVringIndex,
    InvalidVringState,
    InvalidVringAddress,
    InvalidConfigRequest,
}

/// <summary>The front-end broke vhost-user.rst; the connection is closed and its fds released.</summary>
public sealed class VhostUserProtocolException : Exception
{
    public VhostUserProtocolException(VhostUserError error, string message)
        : base($"{error}: {message}")
    {
        Error = error;
    }

    public VhostUserError Error { get; }
}

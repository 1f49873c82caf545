namespace VirtFs.ProxyFs.Protocol;

/// <summary>The peer sent bytes outside the protocol (short, oversized, trailing or unknown data).
/// The connection that carried them must be closed; there is no resynchronisation.</summary>
public sealed class ProxyProtocolException : Exception
{
    public ProxyProtocolException(string message) : base(message) { }
}

namespace VirtFs.ProxyFs;

/// <summary>The proxy connection failed (EOF, short read, socket error, malformed reply). The client that
/// threw is broken and must be disposed; callers answer EIO for the request.</summary>
public sealed class ProxyConnectionException : IOException
{
    public ProxyConnectionException(string message) : base(message) { }
    public ProxyConnectionException(string message, Exception inner) : base(message, inner) { }
}

using System.Runtime.InteropServices;

namespace VirtFs.ProxyFs.Protocol;

/// <summary>ProxyHeader { u32 type; u32 size; } in host byte order (hw/9pfs/9p-proxy.h notes the proxy
/// marshalling does no little-endian conversion, unlike 9P).</summary>
public readonly record struct ProxyHeader(uint Type, uint Size)
{
    public static ProxyHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < ProxyLimits.HeaderSize) ThrowHelper.Short();
        return new ProxyHeader(MemoryMarshal.Read<uint>(source), MemoryMarshal.Read<uint>(source[4..]));
    }

    public void Write(Span<byte> destination)
    {
        MemoryMarshal.Write(destination, Type);
        MemoryMarshal.Write(destination[4..], Size);
    }

    /// <summary>Size bounded by PROXY_MAX_IO_SZ; a larger size ends the connection (virtfs-proxy-helper read_request).</summary>
    public void CheckSize()
    {
        if (Size > ProxyLimits.MaxBodySize)
            throw new ProxyProtocolException($"message size {Size} exceeds PROXY_MAX_IO_SZ ({ProxyLimits.MaxBodySize})");
    }
}

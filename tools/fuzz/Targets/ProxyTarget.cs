using VirtFs.Helper;
using VirtFs.ProxyFs;
using VirtFs.ProxyFs.Protocol;

namespace VirtFs.Fuzz.Targets;

/// <summary>
/// The helper's request decoder: what src/Helper/Connection.cs does with the bytes a client sends before any
/// syscall, on a stream of QEMU 7.2 proxy requests (8-byte host-endian header, then the body). Per request:
/// header read, size bounded (PROXY_MAX_IO_SZ), type checked, body decoded by the decoder of its type, and every
/// path and name turned into a C string (<see cref="CPath"/>), exactly as the helper's Dispatch does. A protocol
/// violation (<see cref="ProxyProtocolException"/>) ends the stream as it ends the helper's connection; a body
/// cut short by the end of input is the peer closing mid-message.
///
/// Findings: any other exception (the decoders must reject hostile bytes with the protocol exception), a C
/// string that is not the wire string minus at most one trailing NUL, and a request that our own encoder
/// (the backend's side, <see cref="ProxyRequestEncoder"/>) would not write back byte for byte.
/// </summary>
internal sealed class ProxyTarget : IFuzzTarget
{
    private readonly CPath _cpath = new();
    private readonly byte[] _encoded = new byte[ProxyLimits.MaxMessageSize];

    public int MaxInputLength => 3 * ProxyLimits.MaxMessageSize;

    public void Execute(ReadOnlySpan<byte> input)
    {
        try
        {
            while (input.Length >= ProxyLimits.HeaderSize)
            {
                var header = ProxyHeader.Read(input);
                header.CheckSize();
                if (!ProxyRequestTypes.IsRequest(header.Type))
                {
                    throw new ProxyProtocolException($"unknown request type {header.Type}");
                }
                int size = (int)header.Size;
                if (input.Length - ProxyLimits.HeaderSize < size)
                {
                    return; // the peer closed mid-message
                }
                Decode((ProxyRequestType)header.Type, input.Slice(ProxyLimits.HeaderSize, size));
                input = input[(ProxyLimits.HeaderSize + size)..];
            }
        }
        catch (ProxyProtocolException)
        {
            // the helper logs it and ends the connection
        }
    }

    /// <summary>The decode half of the helper's Connection.Dispatch, type for type.</summary>
    private void Decode(ProxyRequestType type, ReadOnlySpan<byte> body)
    {
        switch (type)
        {
            case ProxyRequestType.Open:
            {
                var r = OpenRequest.Decode(body);
                Path(r.Path);
                Same(type, body, ProxyRequestEncoder.Open(_encoded, r.Path, r.Flags));
                break;
            }
            case ProxyRequestType.Create:
            {
                var r = CreateRequest.Decode(body);
                Path(r.Path);
                Same(type, body, ProxyRequestEncoder.Create(_encoded, r.Path, r.Flags, r.Mode, r.Uid, r.Gid));
                break;
            }
            case ProxyRequestType.Mknod:
            case ProxyRequestType.Mkdir:
            case ProxyRequestType.Symlink:
            {
                var r = CreateOtherRequest.Decode(type, body);
                Path(r.Path);
                Path(r.Target);
                Same(type, body, type switch
                {
                    ProxyRequestType.Mknod => ProxyRequestEncoder.Mknod(_encoded, r.Path, r.Mode, r.Rdev, r.Uid, r.Gid),
                    ProxyRequestType.Mkdir => ProxyRequestEncoder.Mkdir(_encoded, r.Path, r.Mode, r.Uid, r.Gid),
                    _ => ProxyRequestEncoder.Symlink(_encoded, r.Target, r.Path, r.Uid, r.Gid),
                });
                break;
            }
            case ProxyRequestType.Link:
            case ProxyRequestType.Rename:
            case ProxyRequestType.RemoveXattr:
            case ProxyRequestType.Chmod:
            case ProxyRequestType.Chown:
            case ProxyRequestType.Truncate:
            case ProxyRequestType.Utime:
            case ProxyRequestType.Remove:
            case ProxyRequestType.Lstat:
            case ProxyRequestType.Statfs:
            case ProxyRequestType.Readlink:
            case ProxyRequestType.GetVersion:
            {
                var r = PathRequest.Decode(type, body);
                Path(r.Path);
                Path(r.Second);
                Same(type, body, type switch
                {
                    ProxyRequestType.Link or ProxyRequestType.Rename or ProxyRequestType.RemoveXattr =>
                        ProxyRequestEncoder.TwoStrings(_encoded, type, r.Path, r.Second),
                    ProxyRequestType.Chmod => ProxyRequestEncoder.PathInt(_encoded, type, r.Path, r.Mode),
                    ProxyRequestType.Readlink => ProxyRequestEncoder.PathInt(_encoded, type, r.Path, r.BufferSize),
                    ProxyRequestType.Chown => ProxyRequestEncoder.Chown(_encoded, r.Path, (uint)r.Uid, (uint)r.Gid),
                    ProxyRequestType.Truncate => ProxyRequestEncoder.Truncate(_encoded, r.Path, r.Length),
                    ProxyRequestType.Utime => ProxyRequestEncoder.Utime(_encoded, r.Path, r.AtimeSec, r.AtimeNsec, r.MtimeSec, r.MtimeNsec),
                    _ => ProxyRequestEncoder.PathOnly(_encoded, type, r.Path),
                });
                break;
            }
            case ProxyRequestType.GetXattr:
            case ProxyRequestType.ListXattr:
            {
                var r = GetXattrRequest.Decode(type, body);
                Path(r.Path);
                Path(r.Name);
                Same(type, body, type == ProxyRequestType.GetXattr
                    ? ProxyRequestEncoder.GetXattr(_encoded, r.Size, r.Path, r.Name)
                    : ProxyRequestEncoder.ListXattr(_encoded, r.Size, r.Path));
                break;
            }
            case ProxyRequestType.SetXattr:
            {
                var r = SetXattrRequest.Decode(body);
                Path(r.Path);
                Path(r.Name);
                // The helper answers EINVAL when the separate size is not the value's length; our encoder only
                // writes the consistent form.
                if (r.Size == r.Value.Length)
                {
                    Same(type, body, ProxyRequestEncoder.SetXattr(_encoded, r.Path, r.Name, r.Value, r.Flags));
                }
                break;
            }
            default:
                throw new ProxyProtocolException($"unknown request type {(uint)type}");
        }
    }

    private void Path(ReadOnlySpan<byte> wire)
    {
        if (_cpath.Set(wire, out byte[] c) < 0)
        {
            return; // EINVAL to the client: a NUL inside the string
        }
        ReadOnlySpan<byte> expected = wire.Length > 0 && wire[^1] == 0 ? wire[..^1] : wire;
        if (!c.AsSpan(0, expected.Length).SequenceEqual(expected) || c[expected.Length] != 0)
        {
            throw new FuzzFindingException($"C string of a {wire.Length}-byte wire string is not the string");
        }
    }

    private void Same(ProxyRequestType type, ReadOnlySpan<byte> body, int encodedLength)
    {
        if (encodedLength < 0)
        {
            throw new FuzzFindingException($"{type}: our encoder refuses a request the decoder accepted ({body.Length} bytes)");
        }
        var header = ProxyHeader.Read(_encoded);
        ReadOnlySpan<byte> encodedBody = _encoded.AsSpan(ProxyLimits.HeaderSize, encodedLength - ProxyLimits.HeaderSize);
        if (header.Type != (uint)type || header.Size != (uint)encodedBody.Length || !encodedBody.SequenceEqual(body))
        {
            throw new FuzzFindingException($"{type}: decoded and re-encoded request differs from the wire bytes");
        }
    }

    public void Dispose() { }
}

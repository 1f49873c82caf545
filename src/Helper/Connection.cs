using Microsoft.Win32.SafeHandles;
using VirtFs.ProxyFs;
using VirtFs.ProxyFs.Protocol;
using VirtFs.ProxyFs.Transport;

namespace VirtFs.Helper;

/// <summary>
/// Serves one client socket: read a header, bound its size, read the body, decode it completely, run the
/// operation, reply. A message outside the protocol (size above PROXY_MAX_IO_SZ, unknown type, a body that does
/// not match its format, a string longer than its message) is logged and ends this connection only; since the
/// whole body is decoded before any syscall, nothing is half-applied.
/// </summary>
internal sealed class Connection
{
    private readonly int _socket;
    private readonly string _name;
    private readonly byte[] _request = new byte[ProxyLimits.MaxMessageSize];
    private readonly byte[] _reply = new byte[ProxyLimits.MaxMessageSize];
    private readonly Operations _ops;

    public Connection(int socket, string name, bool getVersionSupported)
    {
        _socket = socket;
        _name = name;
        _ops = new Operations(getVersionSupported);
    }

    /// <summary>Runs until the peer closes or breaks the protocol. Never throws.</summary>
    public void Run()
    {
        try
        {
            while (true)
            {
                if (!SocketIo.ReadExact(_socket, _request.AsSpan(0, ProxyLimits.HeaderSize), eofAllowedAtStart: true))
                {
                    Log.Info($"{_name}: closed by peer");
                    return;
                }
                var header = ProxyHeader.Read(_request);
                header.CheckSize();
                if (!ProxyRequestTypes.IsRequest(header.Type))
                    throw new ProxyProtocolException($"unknown request type {header.Type}");
                int size = (int)header.Size;
                SocketIo.ReadExact(_socket, _request.AsSpan(ProxyLimits.HeaderSize, size), eofAllowedAtStart: false);
                Dispatch((ProxyRequestType)header.Type, _request.AsSpan(ProxyLimits.HeaderSize, size));
            }
        }
        catch (ProxyProtocolException e)
        {
            Log.Error($"{_name}: protocol violation, closing the connection: {e.Message}");
        }
        catch (ProxyConnectionException e)
        {
            Log.Error($"{_name}: {e.Message}");
        }
        catch (Exception e)
        {
            Log.Error($"{_name}: internal error, closing the connection: {e}");
        }
        finally
        {
            Tmds.Linux.LibC.close(_socket);
        }
    }

    private void Dispatch(ProxyRequestType type, ReadOnlySpan<byte> body)
    {
        switch (type)
        {
            case ProxyRequestType.Open:
            {
                var req = OpenRequest.Decode(body);
                SendFd(_ops.Open(req, out var fd), fd);
                break;
            }
            case ProxyRequestType.Create:
            {
                var req = CreateRequest.Decode(body);
                SendFd(_ops.Create(req, out var fd), fd);
                break;
            }
            case ProxyRequestType.Mknod:
            case ProxyRequestType.Mkdir:
            case ProxyRequestType.Symlink:
                Status(_ops.CreateOther(type, CreateOtherRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Link:
                Status(_ops.Link(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Rename:
                Status(_ops.Rename(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Chmod:
                Status(_ops.Chmod(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Chown:
                Status(_ops.Chown(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Truncate:
                Status(_ops.Truncate(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Utime:
                Status(_ops.Utime(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.Remove:
                Status(_ops.Remove(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.RemoveXattr:
                Status(_ops.RemoveXattr(PathRequest.Decode(type, body)));
                break;
            case ProxyRequestType.SetXattr:
                Status(_ops.SetXattr(SetXattrRequest.Decode(body)));
                break;
            case ProxyRequestType.Lstat:
            {
                int r = _ops.Lstat(PathRequest.Decode(type, body), out var st);
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r) : ProxyReplyEncoder.Stat(_reply, st));
                break;
            }
            case ProxyRequestType.Statfs:
            {
                int r = _ops.Statfs(PathRequest.Decode(type, body), out var st);
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r) : ProxyReplyEncoder.StatFs(_reply, st));
                break;
            }
            case ProxyRequestType.Readlink:
            {
                int r = _ops.Readlink(PathRequest.Decode(type, body));
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r) : ProxyReplyEncoder.String(_reply, _ops.Data(r)));
                break;
            }
            case ProxyRequestType.GetXattr:
            case ProxyRequestType.ListXattr:
            {
                var req = GetXattrRequest.Decode(type, body);
                int r = _ops.GetXattr(type, req);
                // do_getxattr: size 0 answers the size as an int, otherwise the bytes as a string.
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r)
                    : req.Size == 0 ? ProxyReplyEncoder.Size(_reply, r)
                    : ProxyReplyEncoder.String(_reply, _ops.Data(r)));
                break;
            }
            case ProxyRequestType.GetVersion:
            {
                int r = _ops.GetVersion(PathRequest.Decode(type, body), out ulong v);
                Send(r < 0 ? ProxyReplyEncoder.Error(_reply, r) : ProxyReplyEncoder.Version(_reply, v));
                break;
            }
            default:
                throw new ProxyProtocolException($"unknown request type {(uint)type}");
        }
    }

    private void Status(int status) => Send(ProxyReplyEncoder.Status(_reply, status));

    private void Send(int length) => SocketIo.WriteAll(_socket, _reply.AsSpan(0, length));

    /// <summary>send_fd: the fd goes over SCM_RIGHTS and our copy is closed right after.</summary>
    private void SendFd(int status, SafeFileHandle? fd)
    {
        using (fd)
        {
            FdReply.Send(_socket, status, status < 0 ? null : fd);
        }
    }
}

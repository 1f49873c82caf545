namespace VirtFs.VhostUser.Tests;

/// <summary>Copies each request's readable bytes into its writable part, optionally on another thread.</summary>
internal sealed class EchoDevice : IVirtioDevice
{
    public ulong DeviceFeatures => 1;
    public int QueueCount => 1;
    public ReadOnlyMemory<byte> Config { get; } = new byte[] { 4, 0, (byte)'t', (byte)'e', (byte)'s', (byte)'t' };
    public bool CompleteOnThreadPool { get; init; }
    public int Stopped;
    public int Handled;

    public void HandleRequest(DescriptorChain request)
    {
        Interlocked.Increment(ref Handled);
        if (CompleteOnThreadPool)
        {
            ThreadPool.UnsafeQueueUserWorkItem(Echo, request, preferLocal: false);
        }
        else
        {
            Echo(request);
        }
    }

    private static void Echo(DescriptorChain request)
    {
        var buffer = new byte[request.ReadableLength];
        int n = request.CopyFromReadable(0, buffer);
        int written = request.CopyToWritable(0, buffer.AsSpan(0, n));
        request.Complete(written);
    }

    public void OnStopped() => Interlocked.Increment(ref Stopped);
}

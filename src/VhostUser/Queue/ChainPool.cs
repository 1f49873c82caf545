namespace VirtFs.VhostUser;

/// <summary>The <see cref="DescriptorChain"/> objects of one vring, reused so a steady stream of requests allocates
/// nothing. Rented on the queue thread, returned (reset) from whichever thread completes the chain.</summary>
internal sealed class ChainPool
{
    private readonly Stack<DescriptorChain> _free = new();

    public DescriptorChain Rent()
    {
        lock (_free)
        {
            if (_free.TryPop(out DescriptorChain? r))
            {
                return r;
            }
        }
        return new DescriptorChain();
    }

    public void Return(DescriptorChain request)
    {
        request.Reset();
        request.MarkFree();
        lock (_free)
        {
            _free.Push(request);
        }
    }
}

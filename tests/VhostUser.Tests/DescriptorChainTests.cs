namespace VirtFs.VhostUser.Tests;

/// <summary>Issue 13 item 1: a pooled request does not keep the segment arrays a long chain grew.</summary>
public sealed class DescriptorChainTests
{
    [Fact]
    public void A_request_back_in_the_pool_drops_arrays_a_long_chain_grew()
    {
        var request = new DescriptorChain();
        for (int i = 0; i < 4096; i++)
        {
            request.AddSegment(0x1000 + i * 16, 16, writable: i % 2 == 0);
        }
        Assert.True(request.SegmentCapacity >= 4096);
        request.Reset();
        Assert.True(request.SegmentCapacity <= 2 * DescriptorChain.PooledSegmentCapacity, $"kept {request.SegmentCapacity}");
    }

    [Fact]
    public void A_request_back_in_the_pool_keeps_arrays_a_normal_chain_needs()
    {
        var request = new DescriptorChain();
        for (int i = 0; i < 130; i++)
        {
            request.AddSegment(0x1000 + i * 4096, 4096, writable: true); // a 512000-byte zero-copy reply
        }
        int grown = request.SegmentCapacity;
        request.Reset();
        Assert.Equal(grown, request.SegmentCapacity); // steady state allocates nothing
        Assert.Equal(0, request.WritableLength);
    }
}

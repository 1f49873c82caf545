namespace VirtFs.VhostUser;

/// <summary>The vring that hands a chain out takes it back here (<see cref="DescriptorChain.Complete"/>).</summary>
internal interface IChainCompleter
{
    void Complete(DescriptorChain request, uint bytesWritten);
}

namespace VirtFs.VhostUser;

/// <summary>
/// A guest-physical address (what descriptors carry). No arithmetic operators: callers choose
/// <see cref="CheckedAdd"/> so overflow is always handled explicitly.
/// </summary>
public readonly record struct GuestAddress(ulong Value)
{
    /// <summary>Returns the address <paramref name="offset"/> bytes further, or false when that overflows.</summary>
    public bool CheckedAdd(ulong offset, out GuestAddress result)
    {
        ulong sum = Value + offset;
        if (sum < Value)
        {
            result = default;
            return false;
        }
        result = new GuestAddress(sum);
        return true;
    }

    public override string ToString() => $"0x{Value:x}";
}

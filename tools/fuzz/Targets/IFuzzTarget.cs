namespace VirtFs.Fuzz.Targets;

/// <summary>
/// One fuzz target: runs one input from a clean state and throws on a finding. Anything that escapes
/// <see cref="Execute"/> (an exception, a broken invariant reported as <see cref="FuzzFindingException"/>) is a
/// crash to afl-fuzz; an expected rejection of hostile input must be handled inside the code under test.
/// </summary>
internal interface IFuzzTarget : IDisposable
{
    /// <summary>Largest input worth running; afl-fuzz is told the same with -G, longer inputs are cut.</summary>
    int MaxInputLength { get; }

    void Execute(ReadOnlySpan<byte> input);
}

/// <summary>An invariant the code under test broke (a reply that is not a reply, a file outside the export
/// touched, an fd leaked): as much a crash as an exception.</summary>
internal sealed class FuzzFindingException(string message) : Exception(message);

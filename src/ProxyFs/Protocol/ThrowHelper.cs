using System.Diagnostics.CodeAnalysis;

namespace VirtFs.ProxyFs.Protocol;

internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void Short() => throw new ProxyProtocolException("message shorter than its fields");

    [DoesNotReturn]
    public static void Trailing(int count) => throw new ProxyProtocolException($"{count} unexpected trailing bytes");

    [DoesNotReturn]
    public static void StringTooLong(int length, int max) =>
        throw new ProxyProtocolException($"string of {length} bytes exceeds its limit of {max}");
}

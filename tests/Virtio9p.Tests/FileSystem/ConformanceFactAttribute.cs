using Xunit.Abstractions;
using Xunit.Sdk;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>A conformance case: a [Fact] that is reported as skipped, with the reason, when its class needs
/// the real helper (<see cref="IRequiresHelper"/>) and no built helper can be found.</summary>
[XunitTestCaseDiscoverer("VirtFs.Virtio9p.Tests.FileSystem.ConformanceFactDiscoverer", "VirtFs.Virtio9p.Tests")]
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class ConformanceFactAttribute : FactAttribute;

/// <summary>Marks a conformance run that drives the real virtfs-proxy-helper.</summary>
public interface IRequiresHelper;

public sealed class ConformanceFactDiscoverer(IMessageSink diagnostics) : IXunitTestCaseDiscoverer
{
    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions options, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        Type? type = testMethod.TestClass.Class.ToRuntimeType();
        string? skip = type is not null && typeof(IRequiresHelper).IsAssignableFrom(type) ? HelperLocator.SkipReason : null;
        if (skip is not null)
        {
            yield return new XunitSkippedDataRowTestCase(diagnostics, options.MethodDisplayOrDefault(),
                options.MethodDisplayOptionsOrDefault(), testMethod, skip);
        }
        else
        {
            yield return new XunitTestCase(diagnostics, options.MethodDisplayOrDefault(),
                options.MethodDisplayOptionsOrDefault(), testMethod);
        }
    }
}

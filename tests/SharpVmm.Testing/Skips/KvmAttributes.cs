using System.Reflection;
using Xunit.Sdk;

namespace SharpVmm.Testing;

/// <summary>A fact that builds a KVM VM: skipped, with the reason, where /dev/kvm is missing or unusable.</summary>
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        if (HostFeatures.Missing(Need.Kvm) is { } why) Skip = why;
    }
}

/// <summary>A theory whose every case builds a KVM VM.</summary>
public sealed class KvmTheoryAttribute : TheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (HostFeatures.Missing(Need.Kvm) is { } why) Skip = why;
    }
}

/// <summary>
/// One theory case that runs on KVM, written like <c>InlineData</c>: where KVM is missing only this case is skipped
/// (with the reason) and the theory's emu cases still run.
/// </summary>
[DataDiscoverer("Xunit.Sdk.InlineDataDiscoverer", "xunit.core")]
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class KvmInlineDataAttribute : DataAttribute
{
    private readonly object?[] _data;

    public KvmInlineDataAttribute(params object?[] data)
    {
        _data = data;
        if (HostFeatures.Missing(Need.Kvm) is { } why) Skip = why;
    }

    public override IEnumerable<object?[]> GetData(MethodInfo testMethod) => [_data];
}

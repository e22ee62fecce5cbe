namespace SharpVmm.Testing;

/// <summary>A fact skipped, with the reason, where the host lacks any of <paramref name="needs"/>.</summary>
public sealed class NeedsFactAttribute : FactAttribute
{
    public NeedsFactAttribute(params Need[] needs)
    {
        if (HostFeatures.FirstMissing(needs) is { } why) Skip = why;
    }
}

/// <summary>The theory form of <see cref="NeedsFactAttribute"/>: every case is skipped.</summary>
public sealed class NeedsTheoryAttribute : TheoryAttribute
{
    public NeedsTheoryAttribute(params Need[] needs)
    {
        if (HostFeatures.FirstMissing(needs) is { } why) Skip = why;
    }
}

namespace SharpVmm.Machine.Tests;

/// <summary>Skips KVM tests, with the reason, on machines without a usable /dev/kvm (here it is present, so they run).</summary>
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        if (!KvmAvailable.Check(out string why)) Skip = why;
    }
}

public sealed class KvmTheoryAttribute : TheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (!KvmAvailable.Check(out string why)) Skip = why;
    }
}

internal static class KvmAvailable
{
    public static bool Check(out string why)
    {
        try
        {
            using var f = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            why = "";
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            why = $"/dev/kvm is not usable here: {ex.Message}";
            return false;
        }
    }
}

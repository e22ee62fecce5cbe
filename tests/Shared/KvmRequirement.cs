namespace SharpVmm.Testing;

// Compiled into each test project that builds KVM VMs (linked from tests/Shared), so they all skip the same way.

/// <summary>A fact that builds a KVM VM: skipped, with the reason, where /dev/kvm cannot be opened (here it can, so it runs).</summary>
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        if (!KvmAvailable.Check(out string why)) Skip = why;
    }
}

/// <summary>The theory form of <see cref="KvmFactAttribute"/>.</summary>
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

namespace SharpVmm.EndToEnd;

/// <summary>Skips, with the reason, where /dev/kvm cannot be opened; here it can, so these run.</summary>
public sealed class KvmTheoryAttribute : TheoryAttribute
{
    public KvmTheoryAttribute()
    {
        try
        {
            using var f = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Skip = $"/dev/kvm is not usable here: {ex.Message}";
        }
    }
}

namespace SharpVmm.Monitor.Tests;

/// <summary>Skips tests that build a VM, with the reason, where /dev/kvm is not usable (here it is, so they run).</summary>
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
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

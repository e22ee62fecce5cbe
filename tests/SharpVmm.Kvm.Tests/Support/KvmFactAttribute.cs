using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm.Tests.Support;

/// <summary>A fact that needs a usable /dev/kvm; skipped with the reason when the host has none.</summary>
public sealed class KvmFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> s_unavailable = new(() =>
    {
        try
        {
            using var kvm = KvmSystem.Open();
            return kvm.HasCapability(KvmCap.ImmediateExit) ? null : "KVM lacks KVM_CAP_IMMEDIATE_EXIT";
        }
        catch (KvmException e)
        {
            return e.Message;
        }
    });

    public KvmFactAttribute()
    {
        if (s_unavailable.Value is { } why) Skip = $"needs /dev/kvm: {why}";
    }
}

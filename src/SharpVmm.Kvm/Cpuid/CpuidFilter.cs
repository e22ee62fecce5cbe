using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm.Cpuid;

/// <summary>
/// Turns KVM_GET_SUPPORTED_CPUID into one vCPU's CPUID: its own APIC ID where CPUID reports one, the hypervisor bit
/// set, and features a guest cannot use safely under this VMM hidden.
/// </summary>
public static class CpuidFilter
{
    private const uint Leaf1HypervisorEcx = 1u << 31;
    private const uint Leaf1MonitorEcx = 1u << 3;

    /// <summary>The entries for vCPU <paramref name="apicId"/>; <paramref name="supported"/> is not modified.</summary>
    public static KvmCpuidEntry2[] ForVcpu(ReadOnlySpan<KvmCpuidEntry2> supported, int apicId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(apicId);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(apicId, 254);
        var result = supported.ToArray();
        for (int i = 0; i < result.Length; i++)
        {
            ref var e = ref result[i];
            switch (e.Function)
            {
                case 1:
                    e.Ebx = (e.Ebx & 0x00FF_FFFF) | ((uint)apicId << 24);
                    e.Ecx |= Leaf1HypervisorEcx;
                    // MONITOR/MWAIT would let a guest idle in ways our exit loop never sees.
                    e.Ecx &= ~Leaf1MonitorEcx;
                    break;
                case 0xB:
                case 0x1F:
                    // Extended topology: EDX is the x2APIC ID on every subleaf.
                    e.Edx = (uint)apicId;
                    break;
            }
        }
        return result;
    }
}

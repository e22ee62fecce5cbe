namespace SharpVmm.Emulator;

/// <summary>
/// The hypervisor CPUID leaves. CPUID.1:ECX[31] says "running under a hypervisor" and leaf 0x40000000 names it with
/// KVM's signature, "KVMKVMKVM\0\0\0", whose paravirtual interface (leaf 0x40000001) is a list of opt-in features: we
/// offer none of KVM's clocks, MSRs or hypercalls, only the hint that port I/O needs no delay (KVM_FEATURE_NOP_IO_DELAY,
/// true of every port here).
/// Why at all: Linux enables x2APIC without interrupt remapping only on a hypervisor it recognises (the hypervisor's
/// x2apic_available, which for KVM is merely "the signature is there"), and then in physical destination mode, which
/// our IOAPIC and the IPIs address by x2APIC ID. Off (<c>--accel emu,hypervisor=off</c>), the CPU looks like bare metal
/// and Linux stays in xAPIC mode.
/// </summary>
internal sealed partial class X86Cpu
{
    /// <summary>CPUID.1:ECX bit 31, reserved for hypervisors to set.</summary>
    public const uint Leaf1EcxHypervisor = 1u << 31;

    public const uint HypervisorBaseLeaf = 0x4000_0000, HypervisorFeaturesLeaf = 0x4000_0001;

    /// <summary>KVM_FEATURE_NOP_IO_DELAY (bit 1 of leaf 0x40000001 EAX); every other KVM feature bit stays clear.</summary>
    public const uint KvmFeatureNopIoDelay = 1u << 1;

    /// <summary>Whether CPUID reports the hypervisor bit and leaves; set once, before the vCPU first runs.</summary>
    public bool HypervisorLeaves { get; set; }

    private static void HypervisorLeaf(uint leaf, out uint a, out uint b, out uint c, out uint d)
    {
        if (leaf == HypervisorBaseLeaf)
        {
            a = HypervisorFeaturesLeaf; // the highest hypervisor leaf
            b = 0x4B4D_564B; c = 0x564B_4D56; d = 0x0000_004D; // "KVMK" "VMKV" "M\0\0\0"
            return;
        }
        a = KvmFeatureNopIoDelay; // features
        b = 0; c = 0;
        d = 0;                    // hints: none (not a dedicated, "realtime" host)
    }
}

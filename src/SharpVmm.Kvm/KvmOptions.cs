namespace SharpVmm.Kvm;

/// <summary>How <see cref="KvmAccelerator.Create"/> sets up the VM.</summary>
public sealed record KvmOptions
{
    /// <summary>
    /// In-kernel interrupt controllers (PIC, IOAPIC, LAPICs: KVM_CREATE_IRQCHIP) and 8254 PIT (KVM_CREATE_PIT2).
    /// With it, <see cref="KvmAccelerator.IrqRouter"/> is the accelerator itself and HLT waits in the kernel for an
    /// interrupt instead of exiting; without it HLT exits as <see cref="Core.Cpu.VcpuExitReason.Halt"/>.
    /// </summary>
    public bool IrqChip { get; init; }

    /// <summary>How many vCPUs the machine will create (indexes 0..VcpuCount-1, also their APIC IDs).</summary>
    public int VcpuCount { get; init; } = 1;

    /// <summary>The KVM device node.</summary>
    public string DevicePath { get; init; } = KvmSystem.DefaultPath;

    /// <summary>
    /// Three guest-physical pages for KVM_SET_TSS_ADDR and the page below them for KVM_SET_IDENTITY_MAP_ADDR (Intel
    /// VMX real-mode support). They must not overlap RAM or device MMIO; the default sits just under the 4 GiB BIOS area.
    /// </summary>
    public ulong TssAddress { get; init; } = 0xFFFB_D000;

    public ulong IdentityMapAddress { get; init; } = 0xFFFB_C000;
}

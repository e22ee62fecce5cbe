namespace SharpVmm.Core.Interrupts;

/// <summary>
/// One emulated CPU's local APIC. The emu accelerator routes its vCPU's accesses to the APIC page
/// (APIC base MSR, normally 0xFEE00000) here rather than to the shared MMIO bus, because every CPU sees
/// its own APIC at the same address. Implemented in SharpVmm.Devices.
/// </summary>
public interface ILocalApic : ICpuInterruptController
{
    int ApicId { get; }

    /// <summary>Register access at <paramref name="offset"/> within the 4 KiB APIC page.</summary>
    void Read(uint offset, Span<byte> data);
    void Write(uint offset, ReadOnlySpan<byte> data);

    /// <summary>An NMI is waiting (ICR or LINT1); taking it clears it.</summary>
    bool TryTakeNmi();

    /// <summary>An INIT IPI arrived for this CPU; taking it clears it. The CPU resets to wait-for-SIPI.</summary>
    bool TryTakeInit();

    /// <summary>A startup IPI arrived: the CPU starts in real mode at CS = vector &lt;&lt; 8, IP = 0.</summary>
    bool TryTakeStartup(out byte vector);

    /// <summary>
    /// MSRs that live in the APIC: IA32_APIC_BASE (0x1B), IA32_TSC_DEADLINE (0x6E0) and, in x2APIC mode, the register
    /// MSRs 0x800-0x8FF. <see cref="ApicMsrResult.NotApic"/> if <paramref name="msr"/> is not one;
    /// <see cref="ApicMsrResult.Fault"/> when the access must raise #GP (x2APIC registers outside x2APIC mode, a
    /// write-only or read-only register, reserved bits, an invalid APIC-mode transition).
    /// </summary>
    ApicMsrResult ReadMsr(uint msr, out ulong value);
    ApicMsrResult WriteMsr(uint msr, ulong value);
}

/// <summary>Outcome of an MSR access offered to the local APIC.</summary>
public enum ApicMsrResult
{
    NotApic,
    Done,
    Fault,
}

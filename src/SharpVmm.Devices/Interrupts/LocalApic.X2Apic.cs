using SharpVmm.Core.Interrupts;

namespace SharpVmm.Devices.Interrupts;

/// <summary>
/// x2APIC mode (SDM vol. 3, 11.12): the registers as MSRs 0x800-0x8FF, a 32-bit APIC ID, the LDR derived from it
/// (cluster in bits 31:16, one bit of 16 in 15:0), a 64-bit ICR with a 32-bit destination, and the SELF IPI
/// register. RDMSR of a write-only register, WRMSR of a read-only one, registers that x2APIC mode drops (DFR, APR,
/// ICR high...), reserved bits, and any of these MSRs outside x2APIC mode raise #GP.
/// </summary>
public sealed partial class LocalApic
{
    /// <summary>Logical ID in x2APIC mode: read-only, a function of the x2APIC ID.</summary>
    private uint X2ApicLdr => ((uint)(_id >> 4) << 16) | (1u << (_id & 0xF));

    private ApicMsrResult ReadX2ApicMsr(uint msr, out ulong value)
    {
        value = 0;
        if (!_x2apic) return ApicMsrResult.Fault;
        uint offset = (msr - ApicRegisters.X2ApicMsrFirst) << 4;
        if (!IsX2ApicReadable(offset)) return ApicMsrResult.Fault;
        lock (_gate)
        {
            value = offset == ApicRegisters.IcrLow
                ? ((ulong)_icrHigh << 32) | _icrLow
                : ReadRegisterLocked(offset);
        }
        return ApicMsrResult.Done;
    }

    private ApicMsrResult WriteX2ApicMsr(uint msr, ulong value)
    {
        if (!_x2apic) return ApicMsrResult.Fault;
        uint offset = (msr - ApicRegisters.X2ApicMsrFirst) << 4;
        if (offset != ApicRegisters.IcrLow && (value >> 32) != 0) return ApicMsrResult.Fault;
        uint low = (uint)value;
        switch (offset)
        {
            case ApicRegisters.Eoi:
                if (low != 0) return ApicMsrResult.Fault;
                DoEoi();
                return ApicMsrResult.Done;
            case ApicRegisters.Esr:
                if (low != 0) return ApicMsrResult.Fault;
                break;
            case ApicRegisters.Tpr:
                if ((low & ~0xFFu) != 0) return ApicMsrResult.Fault;
                break;
            case ApicRegisters.Svr:
                // Spurious vector, APIC enable, focus check; EOI-broadcast suppression (bit 12) is not offered.
                if ((low & ~0x3FFu) != 0) return ApicMsrResult.Fault;
                break;
            case ApicRegisters.IcrLow:
                // One WRMSR sends: destination in bits 63:32, no delivery-status bit (bit 12 and 13 are reserved).
                if ((low & ~0x000C_CFFFu) != 0) return ApicMsrResult.Fault;
                lock (_gate) _icrHigh = (uint)(value >> 32);
                SendIpi(low);
                return ApicMsrResult.Done;
            case ApicRegisters.SelfIpi:
                if ((low & ~0xFFu) != 0) return ApicMsrResult.Fault;
                SendIpi(low | ((uint)ApicShorthand.Self << 18)); // fixed, edge, to itself
                return ApicMsrResult.Done;
            case ApicRegisters.TimerInitialCount:
            case ApicRegisters.TimerDivide:
                break;
            default:
                if (offset >= ApicRegisters.LvtTimer && offset <= ApicRegisters.LvtError) break;
                return ApicMsrResult.Fault; // read-only (ID, version, LDR, PPR, ISR/TMR/IRR, current count) or absent
        }
        WriteRegister(offset, low);
        return ApicMsrResult.Done;
    }

    private static bool IsX2ApicReadable(uint offset) => offset switch
    {
        ApicRegisters.Id or ApicRegisters.Version or ApicRegisters.Tpr or ApicRegisters.Ppr or ApicRegisters.Ldr
            or ApicRegisters.Svr or ApicRegisters.Esr or ApicRegisters.IcrLow or ApicRegisters.TimerInitialCount
            or ApicRegisters.TimerCurrentCount or ApicRegisters.TimerDivide => true,
        >= ApicRegisters.Isr and < ApicRegisters.Esr => true, // ISR, TMR, IRR
        >= ApicRegisters.LvtTimer and <= ApicRegisters.LvtError => true,
        _ => false, // EOI and SELF IPI are write-only; APR, RRD, DFR, ICR high, CMCI and the rest do not exist
    };
}

using System.Buffers.Binary;

namespace SharpVmm.Devices.Interrupts;

public sealed partial class LocalApic
{
    /// <summary>Size of the saved register page: KVM's <c>struct kvm_lapic_state</c> (registers at their MMIO offsets).</summary>
    public const int StateSize = 1024;

    private static readonly uint[] SavedRegisters =
    [
        ApicRegisters.Id, ApicRegisters.Version, ApicRegisters.Tpr, ApicRegisters.Apr, ApicRegisters.Ppr,
        ApicRegisters.Ldr, ApicRegisters.Dfr, ApicRegisters.Svr, ApicRegisters.Esr, ApicRegisters.IcrLow,
        ApicRegisters.IcrHigh, ApicRegisters.LvtTimer, ApicRegisters.LvtThermal, ApicRegisters.LvtPerf,
        ApicRegisters.LvtLint0, ApicRegisters.LvtLint1, ApicRegisters.LvtError, ApicRegisters.TimerInitialCount,
        ApicRegisters.TimerCurrentCount, ApicRegisters.TimerDivide,
    ];

    /// <summary>
    /// Writes the register page in the layout of <c>VcpuState.Lapic</c> (the same KVM uses), including the current
    /// timer count at 0x390. The TSC deadline is the IA32_TSC_DEADLINE MSR, saved with the other MSRs.
    /// In x2APIC mode the page is KVM's x2APIC form (with KVM_X2APIC_API_USE_32BIT_IDS): the ID register holds the
    /// whole 32-bit x2APIC ID, the LDR the logical ID derived from it, and 0x310 the ICR's 32-bit destination.
    /// </summary>
    public void SaveState(Span<byte> page)
    {
        if (page.Length < StateSize) throw new ArgumentException($"The local APIC state needs {StateSize} bytes.", nameof(page));
        page[..StateSize].Clear();
        lock (_gate)
        {
            foreach (uint offset in SavedRegisters)
                BinaryPrimitives.WriteUInt32LittleEndian(page[(int)offset..], ReadRegisterLocked(offset));
            for (int i = 0; i < 8; i++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(page[(int)(ApicRegisters.Isr + i * 0x10)..], _isr[i]);
                BinaryPrimitives.WriteUInt32LittleEndian(page[(int)(ApicRegisters.Tmr + i * 0x10)..], _tmr[i]);
                BinaryPrimitives.WriteUInt32LittleEndian(page[(int)(ApicRegisters.Irr + i * 0x10)..], _irr[i]);
            }
        }
    }

    /// <summary>
    /// Loads a page written by <see cref="SaveState"/> (or KVM_GET_LAPIC). A running one-shot or periodic timer
    /// resumes from the saved current count. Restore IA32_TSC_DEADLINE after this, since it depends on the timer mode.
    /// Restore IA32_APIC_BASE before it: as KVM_SET_LAPIC does, the page is read in the mode the APIC is in, and in
    /// x2APIC mode its ID must be this APIC's fixed x2APIC ID (the LDR is derived, whatever the page says).
    /// </summary>
    public void LoadState(ReadOnlySpan<byte> page)
    {
        if (page.Length < StateSize) throw new ArgumentException($"The local APIC state needs {StateSize} bytes.", nameof(page));
        bool wake;
        lock (_gate)
        {
            uint id = Reg(page, ApicRegisters.Id);
            if (_x2apic && id != _initialId)
                throw new ArgumentException($"The x2APIC state has ID {id}; this APIC's x2APIC ID is {_initialId}.", nameof(page));
            if (!_x2apic && id >> 24 == 0xFF) throw new ArgumentException("The APIC state has ID 255, the broadcast address.", nameof(page));
            StopTimerLocked();
            _tscDeadline = 0;
            _id = _x2apic ? _initialId : (byte)(id >> 24);
            _tpr = Reg(page, ApicRegisters.Tpr) & 0xFF;
            _ldr = Reg(page, ApicRegisters.Ldr) & 0xFF00_0000;
            _dfr = Reg(page, ApicRegisters.Dfr) | 0x0FFF_FFFF;
            uint svr = Reg(page, ApicRegisters.Svr);
            _svr = svr & 0x3FF;
            _swEnabled = (svr & SvrEnable) != 0;
            _esr = Reg(page, ApicRegisters.Esr);
            _esrAccumulated = 0;
            _icrLow = Reg(page, ApicRegisters.IcrLow) & 0x000C_CFFF;
            _icrHigh = Reg(page, ApicRegisters.IcrHigh) & (_x2apic ? 0xFFFF_FFFFu : 0xFF00_0000u);
            for (int i = 0; i < 8; i++)
            {
                _isr[i] = Reg(page, (uint)(ApicRegisters.Isr + i * 0x10));
                _tmr[i] = Reg(page, (uint)(ApicRegisters.Tmr + i * 0x10));
                _irr[i] = Reg(page, (uint)(ApicRegisters.Irr + i * 0x10));
            }
            for (int i = 0; i < _lvt.Length; i++)
                _lvt[i] = Reg(page, (uint)(ApicRegisters.LvtTimer + i * 0x10)) & (LvtWritable[i] | (1u << 14));
            if (TimerMode == 3) _lvt[0] &= ~(3u << 17);
            _timerDivide = Reg(page, ApicRegisters.TimerDivide) & 0xB;
            _timerInitialCount = TimerMode == TimerModeTscDeadline ? 0 : Reg(page, ApicRegisters.TimerInitialCount);
            uint current = Reg(page, ApicRegisters.TimerCurrentCount);
            if (_timerInitialCount != 0 && current != 0)
            {
                long now = _timers.Clock.NowNs;
                long remaining = CountToNs(Math.Min(current, _timerInitialCount));
                _timerPeriodNs = Math.Max(1, CountToNs(_timerInitialCount));
                _timerStartNs = now - (_timerPeriodNs - remaining);
                _timerCounting = true;
                ArmLocked(now + remaining);
            }
            wake = UpdatePendingLocked();
        }
        if (wake) Wake?.Invoke();
    }

    private static uint Reg(ReadOnlySpan<byte> page, uint offset) => BinaryPrimitives.ReadUInt32LittleEndian(page[(int)offset..]);
}

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
    /// </summary>
    public void LoadState(ReadOnlySpan<byte> page)
    {
        if (page.Length < StateSize) throw new ArgumentException($"The local APIC state needs {StateSize} bytes.", nameof(page));
        bool wake;
        lock (_gate)
        {
            StopTimerLocked();
            _tscDeadline = 0;
            _id = (byte)(Reg(page, ApicRegisters.Id) >> 24);
            _tpr = Reg(page, ApicRegisters.Tpr) & 0xFF;
            _ldr = Reg(page, ApicRegisters.Ldr) & 0xFF00_0000;
            _dfr = Reg(page, ApicRegisters.Dfr) | 0x0FFF_FFFF;
            uint svr = Reg(page, ApicRegisters.Svr);
            _svr = svr & 0x3FF;
            _swEnabled = (svr & SvrEnable) != 0;
            _esr = Reg(page, ApicRegisters.Esr);
            _esrAccumulated = 0;
            _icrLow = Reg(page, ApicRegisters.IcrLow) & 0x000C_CFFF;
            _icrHigh = Reg(page, ApicRegisters.IcrHigh) & 0xFF00_0000;
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

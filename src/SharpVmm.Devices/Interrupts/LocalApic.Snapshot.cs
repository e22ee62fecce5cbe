using SharpVmm.Core.State;

namespace SharpVmm.Devices.Interrupts;

public sealed partial class LocalApic
{
    /// <summary>
    /// Everything the APIC holds, for snapshots and migration: more than the KVM-layout register page of
    /// <see cref="SaveState"/> (pending NMI/INIT/SIPI, the LINT input levels, the exact timer instants on the guest clock).
    /// </summary>
    internal void SaveFull(StateWriter w)
    {
        lock (_gate)
        {
            w.WriteU8(_id); w.WriteU32(_ldr); w.WriteU32(_dfr); w.WriteU32(_tpr);
            w.WriteBool(_hwEnabled); w.WriteBool(_swEnabled);
            w.WriteU64(_baseMsr); w.WriteU32(_svr);
            w.WriteU32Array(_irr); w.WriteU32Array(_isr); w.WriteU32Array(_tmr); w.WriteU32Array(_lvt);
            w.WriteU32(_esr); w.WriteU32(_esrAccumulated); w.WriteU32(_icrLow); w.WriteU32(_icrHigh);
            w.WriteBool(_extIntLine); w.WriteBool(_extIntOnce); w.WriteBool(_lint1Level);
            w.WriteBool(Volatile.Read(ref _nmiPending) != 0); w.WriteBool(Volatile.Read(ref _initPending) != 0);
            w.WriteBool(_sipiPending != 0); w.WriteU8(_sipiVector); w.WriteBool(_waitingForSipi);
            w.WriteU32(_timerInitialCount); w.WriteU32(_timerDivide);
            w.WriteI64(_timerStartNs); w.WriteI64(_timerPeriodNs); w.WriteI64(_timerNextNs); w.WriteBool(_timerCounting);
            w.WriteU64(_tscDeadline);
        }
    }

    internal void LoadFull(StateReader r)
    {
        bool wake;
        lock (_gate)
        {
            StopTimerLocked();
            byte id = r.ReadU8("APIC ID");
            if (id == 0xFF) throw r.Error("APIC ID 255 is the broadcast address");
            _id = id;
            _ldr = r.ReadU32("LDR"); _dfr = r.ReadU32("DFR"); _tpr = r.ReadU32("TPR") & 0xFF;
            _hwEnabled = r.ReadBool("APIC enabled"); _swEnabled = r.ReadBool("APIC software-enabled");
            _baseMsr = r.ReadU64("APIC base MSR"); _svr = r.ReadU32("SVR") & 0x3FF;
            // x2APIC mode rides in the base MSR (EXTD); with it the ID is the fixed x2APIC ID.
            _x2apic = (_baseMsr & BaseMsrX2Apic) != 0;
            if (_x2apic && (_baseMsr & BaseMsrEnable) == 0) throw r.Error($"APIC base MSR 0x{_baseMsr:x} has x2APIC mode without the enable bit");
            if (_x2apic && _id != _initialId) throw r.Error($"x2APIC ID {_id} differs from this vCPU's ID {_initialId}");
            r.ReadU32ArrayExactly(_irr, "IRR"); r.ReadU32ArrayExactly(_isr, "ISR"); r.ReadU32ArrayExactly(_tmr, "TMR");
            r.ReadU32ArrayExactly(_lvt, "LVT");
            _esr = r.ReadU32("ESR"); _esrAccumulated = r.ReadU32("accumulated ESR");
            _icrLow = r.ReadU32("ICR low"); _icrHigh = r.ReadU32("ICR high");
            _extIntLine = r.ReadBool("LINT0 (PIC) level"); _extIntOnce = r.ReadBool("ExtINT message"); _lint1Level = r.ReadBool("LINT1 level");
            Volatile.Write(ref _nmiPending, r.ReadBool("NMI pending") ? 1 : 0);
            Volatile.Write(ref _initPending, r.ReadBool("INIT pending") ? 1 : 0);
            _sipiPending = r.ReadBool("SIPI pending") ? 1 : 0; _sipiVector = r.ReadU8("SIPI vector"); _waitingForSipi = r.ReadBool("waiting for SIPI");
            _timerInitialCount = r.ReadU32("timer initial count"); _timerDivide = r.ReadU32("timer divide") & 0xB;
            _timerStartNs = r.ReadI64("timer start"); _timerPeriodNs = r.ReadI64("timer period");
            long next = r.ReadI64("timer deadline"); _timerCounting = r.ReadBool("timer counting");
            _tscDeadline = r.ReadU64("TSC deadline");
            if (_timerCounting && _timerPeriodNs <= 0) throw r.Error($"a counting APIC timer has period {_timerPeriodNs} ns");
            // The deadline is a guest-clock instant, so with the clock restored it expires when it would have.
            if (next >= 0) ArmLocked(next);
            wake = UpdatePendingLocked();
        }
        if (wake || Volatile.Read(ref _nmiPending) != 0 || Volatile.Read(ref _initPending) != 0) Wake?.Invoke();
    }
}

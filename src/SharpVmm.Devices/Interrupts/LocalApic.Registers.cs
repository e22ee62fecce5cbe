namespace SharpVmm.Devices.Interrupts;

public sealed partial class LocalApic
{
    // Writable bits of each LVT entry: timer, thermal, perf, LINT0, LINT1, error.
    private static readonly uint[] LvtWritable = [0x0007_00FF, 0x0001_07FF, 0x0001_07FF, 0x0001_A7FF, 0x0001_A7FF, 0x0001_00FF];

    private uint ReadRegisterLocked(uint offset)
    {
        switch (offset)
        {
            case ApicRegisters.Id: return _x2apic ? _id : (uint)_id << 24;
            case ApicRegisters.Version: return VersionValue;
            case ApicRegisters.Tpr: return _tpr;
            case ApicRegisters.Apr: return ArbitrationPriorityRegisterLocked();
            case ApicRegisters.Ppr: return (uint)ProcessorPriorityLocked();
            case ApicRegisters.Ldr: return _x2apic ? X2ApicLdr : _ldr;
            case ApicRegisters.Dfr: return _dfr;
            case ApicRegisters.Svr: return _svr;
            case ApicRegisters.Esr: return _esr;
            case ApicRegisters.IcrLow: return _icrLow; // delivery status always idle: IPIs are delivered synchronously
            case ApicRegisters.IcrHigh: return _icrHigh;
            case ApicRegisters.TimerInitialCount: return _timerInitialCount;
            case ApicRegisters.TimerCurrentCount: return CurrentCountLocked();
            case ApicRegisters.TimerDivide: return _timerDivide;
        }
        if (offset >= ApicRegisters.Isr && offset < ApicRegisters.Isr + 0x80) return _isr[(offset - ApicRegisters.Isr) >> 4];
        if (offset >= ApicRegisters.Tmr && offset < ApicRegisters.Tmr + 0x80) return _tmr[(offset - ApicRegisters.Tmr) >> 4];
        if (offset >= ApicRegisters.Irr && offset < ApicRegisters.Irr + 0x80) return _irr[(offset - ApicRegisters.Irr) >> 4];
        if (offset >= ApicRegisters.LvtTimer && offset <= ApicRegisters.LvtError) return _lvt[(offset - ApicRegisters.LvtTimer) >> 4];
        return 0; // EOI, RRD and reserved registers read as zero
    }

    private uint ArbitrationPriorityRegisterLocked()
    {
        int tpr = (int)_tpr;
        int irrv = HighestBit(_irr);
        int isrv = HighestBit(_isr);
        int top = Math.Max(irrv < 0 ? 0 : irrv & 0xF0, isrv < 0 ? 0 : isrv & 0xF0);
        return (uint)((tpr & 0xF0) >= top ? tpr : top);
    }

    private void WriteRegister(uint offset, uint value)
    {
        if (offset == ApicRegisters.Eoi)
        {
            DoEoi();
            return;
        }
        if (offset == ApicRegisters.IcrLow)
        {
            SendIpi(value);
            return;
        }

        bool wake;
        lock (_gate)
        {
            switch (offset)
            {
                case ApicRegisters.Id:
                    _id = (byte)(value >> 24);
                    break;
                case ApicRegisters.Tpr:
                    _tpr = value & 0xFF;
                    break;
                case ApicRegisters.Ldr:
                    _ldr = value & 0xFF00_0000;
                    break;
                case ApicRegisters.Dfr:
                    _dfr = value | 0x0FFF_FFFF;
                    break;
                case ApicRegisters.Svr:
                    WriteSvrLocked(value);
                    break;
                case ApicRegisters.Esr:
                    _esr = _esrAccumulated;
                    _esrAccumulated = 0;
                    break;
                case ApicRegisters.IcrHigh:
                    _icrHigh = value & 0xFF00_0000;
                    break;
                case ApicRegisters.TimerInitialCount:
                    WriteInitialCountLocked(value);
                    break;
                case ApicRegisters.TimerDivide:
                    WriteDivideLocked(value);
                    break;
                default:
                    if (offset >= ApicRegisters.LvtTimer && offset <= ApicRegisters.LvtError)
                        WriteLvtLocked((int)((offset - ApicRegisters.LvtTimer) >> 4), value);
                    break; // read-only and reserved registers ignore writes
            }
            wake = UpdatePendingLocked();
        }
        if (wake) Wake?.Invoke();
    }

    private void WriteSvrLocked(uint value)
    {
        // Bits 7:0 spurious vector, 8 APIC enable, 9 focus check; EOI-broadcast suppression (12) is not offered.
        _svr = value & 0x3FF;
        bool enable = (value & SvrEnable) != 0;
        if (!enable)
        {
            for (int i = 0; i < _lvt.Length; i++) _lvt[i] |= ApicRegisters.LvtMasked;
        }
        _swEnabled = enable;
    }

    private void WriteLvtLocked(int index, uint value)
    {
        uint v = value & LvtWritable[index];
        if (!_swEnabled) v |= ApicRegisters.LvtMasked; // masks stay set while software-disabled
        if (index == 0) WriteLvtTimerLocked(v);
        else _lvt[index] = (_lvt[index] & (1u << 14)) | (v & ~(1u << 14));
    }

    private void SendIpi(uint icrLow)
    {
        ApicMessage message;
        lock (_gate)
        {
            _icrLow = icrLow & 0x000C_CFFF;
            var mode = (ApicDeliveryMode)((icrLow >> 8) & 7);
            var shorthand = (ApicShorthand)((icrLow >> 18) & 3);
            bool levelAssert = (icrLow & (1u << 14)) != 0;
            bool levelTrigger = (icrLow & (1u << 15)) != 0;
            // INIT level de-assert only resynchronizes arbitration IDs; it delivers nothing.
            if (mode == ApicDeliveryMode.Init && levelTrigger && !levelAssert) return;
            if (mode is ApicDeliveryMode.Fixed or ApicDeliveryMode.LowestPriority && (byte)icrLow < 16)
            {
                RaiseErrorLocked(1u << 5); // send illegal vector
                UpdatePendingLocked();
                return;
            }
            // x2APIC: the ICR's high half is a 32-bit destination; xAPIC: bits 31:24 of ICR high.
            message = new ApicMessage(
                (byte)icrLow,
                mode,
                (icrLow & (1u << 11)) != 0,
                _x2apic ? _icrHigh : _icrHigh >> 24,
                LevelTriggered: false,
                shorthand,
                X2ApicDestination: _x2apic);
        }
        _bus.SendIpi(this, message);
    }
}

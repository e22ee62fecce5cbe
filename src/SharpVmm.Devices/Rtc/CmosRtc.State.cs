using SharpVmm.Core.State;

namespace SharpVmm.Devices.Rtc;

public sealed partial class CmosRtc : IStateful
{
    public string StateId => "cmos-rtc";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        lock (_gate)
        {
            w.WriteRaw(_ram);
            // The wall clock is kept as (wall time at a guest instant): with the guest clock restored, the guest's
            // RTC reads on from the saved time, as the guest expects after a resume, not the host's time.
            w.WriteI64(_baseUtcTicks);
            w.WriteI64(_baseNs);
            w.WriteI64(_lastUpdateSecond);
            w.WriteI64(_lastPeriodicIndex);
            w.WriteI64(_nextEventNs);
            w.WriteU8(_index);
            w.WriteBool(NmiDisabled);
            w.WriteBool(_irqHigh);
        }
    }

    public void LoadState(StateReader r, int version)
    {
        bool raise;
        lock (_gate)
        {
            r.ReadRaw(_ram, "CMOS RAM");
            long baseTicks = r.ReadI64("wall-clock base");
            if (baseTicks < DateTime.MinValue.Ticks || baseTicks > DateTime.MaxValue.Ticks) throw r.Error($"wall-clock base {baseTicks} is not a valid time");
            _baseUtcTicks = baseTicks;
            _baseNs = r.ReadI64("guest-time base");
            _lastUpdateSecond = r.ReadI64("last update second");
            _lastPeriodicIndex = r.ReadI64("last periodic index");
            _nextEventNs = r.ReadI64("next event");
            _index = (byte)(r.ReadU8("index register") & 0x7F);
            NmiDisabled = r.ReadBool("NMI disabled");
            _irqHigh = r.ReadBool("IRQ 8 level");
            if (_nextEventNs >= 0) _timer.Arm(_nextEventNs);
            else _timer.Cancel();
            raise = _irqHigh;
        }
        if (raise) _irq8.Raise();
    }
}

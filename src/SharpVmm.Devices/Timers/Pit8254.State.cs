using SharpVmm.Core.State;

namespace SharpVmm.Devices.Timers;

public sealed partial class Pit8254 : IStateful
{
    public string StateId => "pit8254";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        lock (_gate)
        {
            foreach (var ch in _channels) ch.Save(w);
            w.WriteI64(_nextEdgeNs);
            w.WriteBool(_irqHigh);
        }
    }

    public void LoadState(StateReader r, int version)
    {
        bool raise;
        lock (_gate)
        {
            foreach (var ch in _channels) ch.Load(r);
            _nextEdgeNs = r.ReadI64("next channel 0 edge");
            _irqHigh = r.ReadBool("IRQ 0 level");
            // The next edge is a guest-clock instant: with the clock restored it fires when it would have.
            if (_nextEdgeNs >= 0) _timer.Arm(_nextEdgeNs);
            else _timer.Cancel();
            raise = _irqHigh;
        }
        if (raise) _irq0.Raise();
    }
}

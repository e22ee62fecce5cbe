using SharpVmm.Core.State;

namespace SharpVmm.Devices.Timers;

internal sealed partial class PitChannel
{
    /// <summary>Counting is kept as guest-clock instants, so with the clock restored the count continues exactly.</summary>
    public void Save(StateWriter w)
    {
        w.WriteI32(Mode); w.WriteI32(Access); w.WriteBool(Bcd); w.WriteBool(Gate); w.WriteBool(NullCount);
        w.WriteI32(_reload); w.WriteBool(_counting); w.WriteI64(_startNs); w.WriteI64(_frozenTicks);
        w.WriteBool(_outputBeforeStart);
        w.WriteBool(_writeHighNext); w.WriteU8(_pendingLow); w.WriteBool(_readHighNext);
        w.WriteI32(_latchedCount); w.WriteBool(_latchedHighNext); w.WriteI32(_latchedStatus);
    }

    public void Load(StateReader r)
    {
        Mode = r.ReadInt(0, 5, "PIT mode");
        Access = r.ReadInt(1, 3, "PIT access mode");
        Bcd = r.ReadBool("BCD flag"); Gate = r.ReadBool("gate"); NullCount = r.ReadBool("null count");
        _reload = r.ReadInt(0, 65_536, "reload value");
        _counting = r.ReadBool("counting");
        if (_counting && _reload == 0) throw r.Error("a counting PIT channel has a reload value of 0");
        _startNs = r.ReadI64("count start");
        _frozenTicks = r.ReadI64("frozen ticks");
        if (_frozenTicks < -1) throw r.Error($"frozen tick count {_frozenTicks} is invalid");
        _outputBeforeStart = r.ReadBool("output before start");
        _writeHighNext = r.ReadBool("write flip-flop"); _pendingLow = r.ReadU8("pending low byte"); _readHighNext = r.ReadBool("read flip-flop");
        _latchedCount = r.ReadInt(-1, 0xFFFF, "latched count");
        _latchedHighNext = r.ReadBool("latch flip-flop");
        _latchedStatus = r.ReadInt(-1, 0xFF, "latched status");
    }
}

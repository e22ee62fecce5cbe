using SharpVmm.Core.State;

namespace SharpVmm.Devices.Interrupts;

public sealed partial class IoApic
{
    internal void Save(StateWriter w)
    {
        lock (_gate)
        {
            w.WriteU32(_id);
            w.WriteU32(_select);
            w.WriteU32(_levels);
            w.WriteU64Array(_redirection);
        }
    }

    internal void Load(StateReader r)
    {
        lock (_gate)
        {
            _id = r.ReadU32("IOAPIC ID") & 0xF;
            _select = r.ReadU32("IOREGSEL") & 0xFF;
            _levels = r.ReadU32("pin levels") & ((1u << PinCount) - 1);
            int n = r.ReadInt(PinCount, PinCount, "redirection entry count");
            for (int i = 0; i < n; i++) _redirection[i] = r.ReadU64("redirection entry") & (WritableBits | RemoteIrr);
        }
    }
}

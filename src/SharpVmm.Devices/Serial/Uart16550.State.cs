using SharpVmm.Core.State;

namespace SharpVmm.Devices.Serial;

public sealed partial class Uart16550 : IStateful
{
    public string StateId => "uart16550";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        lock (_gate)
        {
            w.WriteU8(_ier); w.WriteU8(_lcr); w.WriteU8(_mcr); w.WriteU8(_lsrErrors); w.WriteU8(_msrDelta);
            w.WriteU8(_scr); w.WriteU8(_dll); w.WriteU8(_dlm); w.WriteU8(_fcr);
            w.WriteBool(_thrEmptyPending);
            w.WriteBool(_irqLevel);
            w.WriteI64(BytesTransmitted);
            // Input the guest has not read yet is guest-visible state (LSR.DR, the RDA interrupt).
            w.WriteBytes(_rx.ToArray());
        }
    }

    public void LoadState(StateReader r, int version)
    {
        bool raise;
        lock (_gate)
        {
            _ier = (byte)(r.ReadU8("IER") & 0x0F); _lcr = r.ReadU8("LCR"); _mcr = (byte)(r.ReadU8("MCR") & 0x1F);
            _lsrErrors = r.ReadU8("LSR errors"); _msrDelta = r.ReadU8("MSR deltas");
            _scr = r.ReadU8("SCR"); _dll = r.ReadU8("DLL"); _dlm = r.ReadU8("DLM"); _fcr = (byte)(r.ReadU8("FCR") & 0xC9);
            _thrEmptyPending = r.ReadBool("THRE pending");
            bool level = r.ReadBool("IRQ level");
            BytesTransmitted = r.ReadI64("bytes transmitted");
            byte[] rx = r.ReadBytes(RxCapacity, "receive FIFO");
            _rx.Clear();
            foreach (byte b in rx) _rx.Enqueue(b);
            // The interrupt controller's state carries the line level too; driving the line again is idempotent there
            // and makes an in-kernel irqchip (whose per-source levels are not saved) agree.
            _irqLevel = level;
            raise = level;
        }
        if (raise) _irq?.Raise();
    }
}

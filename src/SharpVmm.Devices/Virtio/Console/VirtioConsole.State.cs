using SharpVmm.Core.State;

namespace SharpVmm.Devices.Virtio.Console;

public sealed partial class VirtioConsole : IStateful
{
    public string StateId => "virtio-console";
    public int StateVersion => 1;

    /// <summary>Input typed but not yet taken by the guest (its receive buffers stay in the ring, saved with the queue).</summary>
    public void SaveState(StateWriter w)
    {
        w.WriteU16(Columns);
        w.WriteU16(Rows);
        lock (_pendingLock) w.WriteBytes(_pending.ToArray());
        w.WriteI64(Interlocked.Read(ref _dropped));
    }

    public void LoadState(StateReader r, int version)
    {
        ushort cols = r.ReadU16("columns"), rows = r.ReadU16("rows");
        if (cols != Columns || rows != Rows) throw r.Error($"the saved console was {cols}x{rows}, this one is {Columns}x{Rows}");
        byte[] pending = r.ReadBytes(MaxPendingInput, "pending input");
        long dropped = r.ReadI64("dropped input bytes");
        lock (_pendingLock)
        {
            _pending.Clear();
            foreach (byte b in pending) _pending.Enqueue(b);
        }
        Interlocked.Exchange(ref _dropped, dropped);
    }
}

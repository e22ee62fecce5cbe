using SharpVmm.Core.State;

namespace SharpVmm.Devices.Legacy;

public sealed partial class I8042Controller : IStateful
{
    private const int MaxOutputBytes = 64;

    public string StateId => "i8042";
    public int StateVersion => 1;

    public void SaveState(StateWriter w)
    {
        lock (_gate)
        {
            w.WriteU8(_config);
            w.WriteU8(_outputPort);
            w.WriteU8(_pendingCommand);
            w.WriteBool(_lastWasCommand);
            w.WriteBytes(_output.ToArray());
        }
    }

    public void LoadState(StateReader r, int version)
    {
        lock (_gate)
        {
            _config = r.ReadU8("configuration byte");
            _outputPort = r.ReadU8("output port");
            _pendingCommand = r.ReadU8("pending command");
            _lastWasCommand = r.ReadBool("last write was a command");
            byte[] output = r.ReadBytes(MaxOutputBytes, "output buffer");
            _output.Clear();
            foreach (byte b in output) _output.Enqueue(b);
        }
    }
}

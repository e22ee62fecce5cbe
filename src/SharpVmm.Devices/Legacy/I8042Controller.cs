using SharpVmm.Core.Io;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Legacy;

/// <summary>
/// The PS/2 controller at ports 0x60 (data) and 0x64 (status/command), registered as two one-port windows
/// (<see cref="DataPort"/>, <see cref="CommandPort"/>) because 0x61 between them is the PIT's gate register.
/// No keyboard or mouse is attached; what is here is what guests use on a headless VM: the controller's
/// self-tests and configuration byte, and the CPU reset line (command 0xFE, or output-port bit 0 cleared).
/// </summary>
public sealed partial class I8042Controller
{
    public const ushort DataPortNumber = PcLayout.I8042DataPort;
    public const ushort CommandPortNumber = PcLayout.I8042CommandPort;

    private const int DataOffset = 0, CommandOffset = 4;
    private const byte StatusOutputFull = 0x01, StatusSystemFlag = 0x04, StatusCommandLast = 0x08;

    private readonly object _gate = new();
    private readonly Queue<byte> _output = new();
    private byte _config = 0x45; // keyboard interrupt on, system flag, translation: the firmware's usual value
    private byte _outputPort = 0x03; // bit 0 = CPU not in reset, bit 1 = A20 enabled
    private byte _pendingCommand;
    private bool _lastWasCommand;
    private readonly IVmControl _control;

    public I8042Controller(IVmControl control)
    {
        _control = control;
        DataPort = new Window(this, DataOffset);
        CommandPort = new Window(this, CommandOffset);
    }

    public IIoDevice DataPort { get; }
    public IIoDevice CommandPort { get; }

    private sealed class Window(I8042Controller owner, int offset) : IIoDevice
    {
        public void Read(ulong o, Span<byte> data) => owner.Read(offset, data);
        public void Write(ulong o, ReadOnlySpan<byte> data) => owner.Write(offset, data);
    }

    private void Read(int offset, Span<byte> data)
    {
        lock (_gate)
        {
            data[0] = offset switch
            {
                DataOffset => _output.Count > 0 ? _output.Dequeue() : (byte)0,
                CommandOffset => (byte)((_output.Count > 0 ? StatusOutputFull : 0) | StatusSystemFlag | (_lastWasCommand ? StatusCommandLast : 0)),
                _ => 0xFF,
            };
        }
        if (data.Length > 1) data[1..].Clear();
    }

    private void Write(int offset, ReadOnlySpan<byte> data)
    {
        bool reset = false;
        lock (_gate)
        {
            if (offset == CommandOffset) reset = Command(data[0]);
            else if (offset == DataOffset) reset = Data(data[0]);
        }
        if (reset) _control.RequestReset();
    }

    private bool Command(byte cmd)
    {
        _lastWasCommand = true;
        _pendingCommand = 0;
        switch (cmd)
        {
            case 0x20: _output.Enqueue(_config); break;             // read configuration byte
            case 0x60: case 0xD1: case 0xD2: case 0xD3: case 0xD4:  // next data byte is for the controller
                _pendingCommand = cmd; break;
            case 0xA7: _config |= 0x20; break;                       // disable aux port
            case 0xA8: _config &= 0xDF; break;                       // enable aux port
            case 0xA9: _output.Enqueue(0xFF); break;                 // aux interface test: no aux device
            case 0xAA: _output.Enqueue(0x55); break;                 // controller self-test passed
            case 0xAB: _output.Enqueue(0x00); break;                 // keyboard interface test passed
            case 0xAD: _config |= 0x10; break;                       // disable keyboard
            case 0xAE: _config &= 0xEF; break;                       // enable keyboard
            case 0xD0: _output.Enqueue(_outputPort); break;          // read output port
            case 0xFE: return true;                                  // pulse the reset line
            default:
                if (cmd >= 0xF0 && (cmd & 0x01) == 0) return true;   // pulse output lines with bit 0 (reset) asserted
                break;
        }
        return false;
    }

    private bool Data(byte value)
    {
        _lastWasCommand = false;
        byte pending = _pendingCommand;
        _pendingCommand = 0;
        switch (pending)
        {
            case 0x60: _config = value; return false;
            case 0xD1:
                _outputPort = value;
                return (value & 0x01) == 0; // bit 0 low holds the CPU in reset
            case 0xD2: _output.Enqueue(value); return false; // echo as if from the keyboard
            case 0xD3: case 0xD4: return false;              // to an aux device that is not there
            default:
                // A byte to the (absent) keyboard: there is nobody to answer, so the controller times out and
                // the guest sees no reply, which is how Linux learns no keyboard is attached.
                return false;
        }
    }
}

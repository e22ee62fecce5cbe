namespace SharpVmm.Devices.Serial;

/// <summary>
/// Guest output to our stdout, our stdin to the guest. On a terminal, the terminal is put in raw mode and
/// QEMU's escapes work: Ctrl-A x quits, Ctrl-A a sends Ctrl-A, Ctrl-A h lists them.
/// </summary>
public sealed class StdioBackend : ICharBackend
{
    private const byte CtrlA = 0x01;

    /// <summary>Called (on the input thread) when the user types Ctrl-A x.</summary>
    public Action? QuitRequested { get; set; }

    private readonly Stream _out = Console.OpenStandardOutput();
    private readonly object _gate = new();
    private Thread? _reader;
    private volatile bool _disposed;

    public void Write(ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            try
            {
                _out.Write(data);
                _out.Flush();
            }
            catch (IOException)
            {
                // Our stdout was closed (a pipe reader went away): the guest must not notice, like a UART with no cable.
            }
        }
    }

    public void Start(Action<ReadOnlySpan<byte>> onInput)
    {
        RawTerminal.Enter();
        _reader = new Thread(() => Pump(onInput)) { IsBackground = true, Name = "serial-stdin" };
        _reader.Start();
    }

    private void Pump(Action<ReadOnlySpan<byte>> onInput)
    {
        // fd 0 itself: on a terminal, Console.OpenStandardInput() reads through .NET's own line editor,
        // which interprets control keys (Ctrl-A among them) before we could see them.
        using var input = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, 1);
        var buf = new byte[256];
        var forward = new byte[256];
        bool escape = false;
        while (!_disposed)
        {
            int n;
            try { n = input.Read(buf, 0, buf.Length); }
            catch (IOException) { return; }
            if (n <= 0) return;
            int m = 0;
            for (int i = 0; i < n; i++)
            {
                byte b = buf[i];
                if (escape)
                {
                    escape = false;
                    switch (b)
                    {
                        case (byte)'x': case (byte)'X':
                            if (m > 0) onInput(forward.AsSpan(0, m));
                            Write("\r\nsharpvmm: terminated by Ctrl-A x\r\n"u8);
                            QuitRequested?.Invoke();
                            return;
                        case CtrlA: case (byte)'a':
                            forward[m++] = CtrlA;
                            break;
                        case (byte)'h': case (byte)'?':
                            Write("\r\nC-a x  quit\r\nC-a a  send C-a\r\nC-a h  this help\r\n"u8);
                            break;
                    }
                }
                else if (b == CtrlA) escape = true;
                else forward[m++] = b;
            }
            if (m > 0) onInput(forward.AsSpan(0, m));
        }
    }

    public void Dispose()
    {
        _disposed = true;
        RawTerminal.Restore();
    }
}

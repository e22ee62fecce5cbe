namespace SharpVmm.Devices.Serial;

/// <summary>Guest output to our stdout, our stdin to the guest.</summary>
public sealed class StdioBackend : ICharBackend
{
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
        _reader = new Thread(() => Pump(onInput)) { IsBackground = true, Name = "serial-stdin" };
        _reader.Start();
    }

    private void Pump(Action<ReadOnlySpan<byte>> onInput)
    {
        using var input = Console.OpenStandardInput();
        var buf = new byte[256];
        while (!_disposed)
        {
            int n;
            try { n = input.Read(buf, 0, buf.Length); }
            catch (IOException) { return; }
            if (n <= 0) return;
            onInput(buf.AsSpan(0, n));
        }
    }

    public void Dispose() => _disposed = true;
}

using System.Text;
using SharpVmm.Devices.Serial;

namespace SharpVmm.Machine.Lifecycle;

/// <summary>
/// Sits between the console UART and its backend and watches the guest's output for a Linux kernel panic.
/// A panicked guest either asks for a reset (<c>panic=N</c>, N≠0) or spins forever (<c>panic=0</c>); neither
/// should keep a run going, so the VM ends it with the panic text (the behaviour QEMU gives with -no-reboot).
/// Linux offers no other channel from a stock cloud kernel (pvpanic is a module the initramfs does not load),
/// and the console is what a user reads, so matching its fixed panic banner is the honest signal.
/// </summary>
public sealed class GuestPanicWatcher : ICharBackend
{
    /// <summary>Printed first by Linux's panic(); the rest of the line is the reason.</summary>
    public const string PanicBanner = "Kernel panic - not syncing";
    /// <summary>Printed last by panic() when it neither reboots nor powers off.</summary>
    public const string PanicEndBanner = "---[ end Kernel panic - not syncing";

    private const int MaxLine = 512; // longer lines are still scanned, in pieces of this size
    private readonly byte[] _line = new byte[MaxLine];
    private readonly object _gate = new();
    private int _length;
    private volatile string? _panicLine;

    public GuestPanicWatcher(ICharBackend? inner) => Inner = inner;

    /// <summary>The backend the bytes go on to; null discards them (serial none).</summary>
    public ICharBackend? Inner { get; }

    /// <summary>The panic line (from "Kernel panic" to the end of the line) once one was seen; null before.</summary>
    public string? PanicLine => _panicLine;

    /// <summary>Raised once, on the writing vCPU's thread, when the panic's closing banner has been printed.</summary>
    public event Action<string>? PanicEnded;

    public void Write(ReadOnlySpan<byte> data)
    {
        Inner?.Write(data);
        lock (_gate)
        {
            foreach (byte b in data)
            {
                if (b == (byte)'\n' || _length == MaxLine) { EndLine(); if (b == (byte)'\n') continue; }
                if (b != (byte)'\r') _line[_length++] = b;
            }
        }
    }

    private void EndLine()
    {
        var line = _line.AsSpan(0, _length);
        _length = 0;
        if (line.IndexOf("Kernel panic"u8) < 0) return;
        string text = Encoding.ASCII.GetString(line);
        if (text.Contains(PanicEndBanner, StringComparison.Ordinal))
        {
            _panicLine ??= text;
            PanicEnded?.Invoke(_panicLine);
            return;
        }
        int at = text.IndexOf(PanicBanner, StringComparison.Ordinal);
        if (at >= 0 && _panicLine is null) _panicLine = text[at..].TrimEnd();
    }

    /// <summary>Forgets a panic seen before the machine was reset: the next boot starts clean.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _length = 0;
            _panicLine = null;
        }
    }

    public void Start(Action<ReadOnlySpan<byte>> onInput) => Inner?.Start(onInput);

    public void Dispose() => Inner?.Dispose();
}

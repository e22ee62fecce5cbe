using SharpVmm.Core.Interrupts;

namespace SharpVmm.Devices.Tests.Timers;

/// <summary>An interrupt wire that remembers its level and counts rising edges.</summary>
internal sealed class RecordingLine : IInterruptLine
{
    private int _rises;
    private volatile bool _level;

    public bool Level => _level;
    public int Rises => Volatile.Read(ref _rises);
    public ManualResetEventSlim Raised { get; } = new();

    public void Raise()
    {
        if (!_level) Interlocked.Increment(ref _rises);
        _level = true;
        Raised.Set();
    }

    public void Lower() => _level = false;

    public void Pulse()
    {
        Raise();
        Lower();
    }
}

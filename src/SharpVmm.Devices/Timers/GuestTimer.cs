namespace SharpVmm.Devices.Timers;

/// <summary>
/// One deadline in guest time (GuestClock ns) served by a <see cref="TimerService"/>. The callback runs on the
/// service thread with no service lock held, receiving the deadline it was armed for (so periodic users can
/// compute the next one from it without drift). Re-arming or cancelling from any thread is safe; a callback that
/// raced with a cancel is suppressed unless it had already started.
/// </summary>
public sealed class GuestTimer
{
    private readonly TimerService _service;
    internal readonly Action<long> Callback;
    internal long DeadlineNs;      // guarded by the service lock
    internal bool Armed;           // guarded by the service lock
    internal int Slot = -1;        // index in the service's table while registered

    internal GuestTimer(TimerService service, Action<long> callback)
    {
        _service = service;
        Callback = callback;
    }

    /// <summary>Fires the callback once at guest time <paramref name="deadlineNs"/> (immediately if already past).</summary>
    public void Arm(long deadlineNs) => _service.Arm(this, deadlineNs);

    public void Cancel() => _service.Cancel(this);

    public bool IsArmed => _service.IsArmed(this);
}

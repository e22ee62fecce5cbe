using System.Collections.Concurrent;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Timers;

namespace SharpVmm.Devices.Tests.Timers;

public class TimerServiceTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public void Timers_fire_in_deadline_order_never_early()
    {
        var clock = new GuestClock();
        using var service = new TimerService(clock);
        var fired = new ConcurrentQueue<(int Id, long Deadline, long At)>();
        using var done = new CountdownEvent(3);
        var timers = new GuestTimer[3];
        for (int i = 0; i < 3; i++)
        {
            int id = i;
            timers[i] = service.CreateTimer(d => { fired.Enqueue((id, d, clock.NowNs)); done.Signal(); });
        }
        clock.Pause(); // all three are armed before any can be due, however slow the host
        long now = clock.NowNs;
        timers[0].Arm(now + 30_000_000);
        timers[1].Arm(now + 10_000_000);
        timers[2].Arm(now + 20_000_000);
        clock.Resume();
        service.Kick();

        Assert.True(done.Wait(Patience));
        Assert.Equal([1, 2, 0], fired.Select(f => f.Id));
        Assert.All(fired, f => Assert.True(f.At >= f.Deadline));
        Assert.False(timers[0].IsArmed);
    }

    [Fact]
    public void Cancelled_timer_does_not_fire()
    {
        var clock = new GuestClock();
        using var service = new TimerService(clock);
        int fired = 0;
        using var other = new ManualResetEventSlim();
        GuestTimer cancelled = service.CreateTimer(_ => Interlocked.Increment(ref fired));
        GuestTimer later = service.CreateTimer(_ => other.Set());
        clock.Pause();
        cancelled.Arm(clock.NowNs + 10_000_000);
        later.Arm(clock.NowNs + 40_000_000);
        cancelled.Cancel();
        clock.Resume();
        service.Kick();
        Assert.True(other.Wait(Patience));
        Assert.Equal(0, Volatile.Read(ref fired));
    }

    [Fact]
    public void Rearming_earlier_wakes_the_sleeping_thread()
    {
        var clock = new GuestClock();
        using var service = new TimerService(clock);
        using var fired = new ManualResetEventSlim();
        long firedFor = 0;
        GuestTimer t = service.CreateTimer(d => { firedFor = d; fired.Set(); });
        t.Arm(clock.NowNs + 3_600_000_000_000); // an hour
        Thread.Sleep(20); // let the service go to sleep on the hour
        long soon = clock.NowNs + 5_000_000;
        t.Arm(soon);
        Assert.True(fired.Wait(Patience));
        Assert.Equal(soon, Volatile.Read(ref firedFor));
    }

    [Fact]
    public void Past_deadline_fires_immediately()
    {
        var clock = new GuestClock();
        using var service = new TimerService(clock);
        using var fired = new ManualResetEventSlim();
        service.CreateTimer(_ => fired.Set()).Arm(0);
        Assert.True(fired.Wait(Patience));
    }

    [Fact]
    public void Far_future_deadline_neither_fires_nor_blocks_nearer_ones()
    {
        var clock = new GuestClock();
        using var service = new TimerService(clock);
        int farFired = 0;
        using var near = new ManualResetEventSlim();
        service.CreateTimer(_ => Interlocked.Increment(ref farFired)).Arm(long.MaxValue);
        Thread.Sleep(20);
        service.CreateTimer(_ => near.Set()).Arm(clock.NowNs + 5_000_000);
        Assert.True(near.Wait(Patience));
        Assert.Equal(0, Volatile.Read(ref farFired));
    }

    [Fact]
    public void Paused_clock_holds_deadlines_until_resumed()
    {
        var clock = new GuestClock();
        using var service = new TimerService(clock);
        using var fired = new ManualResetEventSlim();
        clock.Pause();
        service.CreateTimer(_ => fired.Set()).Arm(clock.NowNs + 5_000_000);
        Assert.False(fired.Wait(TimeSpan.FromMilliseconds(80)));
        clock.Resume();
        service.Kick();
        Assert.True(fired.Wait(Patience));
    }

    [Fact]
    public void Callback_failure_is_reported_and_the_service_keeps_running()
    {
        var clock = new GuestClock();
        using var service = new TimerService(clock);
        Exception? seen = null;
        service.CallbackFailed += ex => seen = ex;
        using var fired = new ManualResetEventSlim();
        service.CreateTimer(_ => throw new InvalidOperationException("boom")).Arm(0);
        service.CreateTimer(_ => fired.Set()).Arm(clock.NowNs + 10_000_000);
        Assert.True(fired.Wait(Patience));
        Assert.IsType<InvalidOperationException>(seen);
    }

    [Fact]
    public void Arming_after_dispose_is_refused()
    {
        var clock = new GuestClock();
        var service = new TimerService(clock);
        GuestTimer t = service.CreateTimer(_ => { });
        service.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.Arm(1));
    }
}

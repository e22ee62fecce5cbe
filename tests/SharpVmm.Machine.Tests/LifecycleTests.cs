using SharpVmm.Machine.Lifecycle;

namespace SharpVmm.Machine.Tests;

public sealed class LifecycleTests
{
    [Theory]
    [InlineData(VmState.Created, VmTransition.Start, VmState.Running)]
    [InlineData(VmState.Running, VmTransition.Pause, VmState.Paused)]
    [InlineData(VmState.Paused, VmTransition.Resume, VmState.Running)]
    [InlineData(VmState.Running, VmTransition.Reset, VmState.Running)]
    [InlineData(VmState.Paused, VmTransition.Reset, VmState.Paused)]
    [InlineData(VmState.Stopped, VmTransition.Reset, VmState.Created)]
    [InlineData(VmState.Created, VmTransition.Stop, VmState.Stopped)]
    [InlineData(VmState.Running, VmTransition.Stop, VmState.Stopped)]
    [InlineData(VmState.Paused, VmTransition.Stop, VmState.Stopped)]
    public void Legal_transitions_lead_where_expected(VmState from, VmTransition t, VmState to)
        => Assert.Equal(to, VmLifecycle.Next(from, t));

    [Theory]
    [InlineData(VmState.Created, VmTransition.Pause)]
    [InlineData(VmState.Created, VmTransition.Resume)]
    [InlineData(VmState.Created, VmTransition.Reset)]
    [InlineData(VmState.Running, VmTransition.Start)]
    [InlineData(VmState.Running, VmTransition.Resume)]
    [InlineData(VmState.Paused, VmTransition.Pause)]
    [InlineData(VmState.Paused, VmTransition.Start)]
    [InlineData(VmState.Stopped, VmTransition.Start)]
    [InlineData(VmState.Stopped, VmTransition.Resume)]
    [InlineData(VmState.Stopped, VmTransition.Stop)]
    public void Illegal_transitions_are_errors_that_say_what_was_asked(VmState from, VmTransition t)
    {
        var ex = Assert.Throws<InvalidVmTransitionException>(() => VmLifecycle.Next(from, t));
        Assert.Contains(t.ToString().ToLowerInvariant(), ex.Message);
        Assert.False(VmLifecycle.IsAllowed(from, t));
    }
}

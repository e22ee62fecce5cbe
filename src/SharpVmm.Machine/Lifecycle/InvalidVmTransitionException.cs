using SharpVmm.Core;

namespace SharpVmm.Machine.Lifecycle;

/// <summary>A lifecycle request that makes no sense in the VM's current state (resume a running VM, start a stopped one).</summary>
public sealed class InvalidVmTransitionException(VmState from, VmTransition transition)
    : VmmException($"cannot {transition.ToString().ToLowerInvariant()} a VM that is {from.ToString().ToLowerInvariant()}")
{
    public VmState From { get; } = from;
    public VmTransition Transition { get; } = transition;
}

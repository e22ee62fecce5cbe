namespace SharpVmm.Machine.Lifecycle;

public enum VmTransition
{
    Start,
    Pause,
    Resume,
    Reset,
    Stop,
}

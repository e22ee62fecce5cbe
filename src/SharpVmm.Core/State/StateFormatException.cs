namespace SharpVmm.Core.State;

/// <summary>
/// Saved state that cannot be loaded: truncated, corrupt, of an unknown version, or not matching the machine it is
/// loaded into (another vCPU count, RAM size or device set). The message names the section and the difference.
/// </summary>
public class StateFormatException : VmmException
{
    public StateFormatException(string message) : base(message) { }
    public StateFormatException(string message, Exception inner) : base(message, inner) { }
}

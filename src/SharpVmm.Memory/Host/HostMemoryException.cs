namespace SharpVmm.Memory.Host;

/// <summary>The host's memory features (KSM, transparent huge pages) are missing, switched off, or not ours to change.</summary>
public sealed class HostMemoryException : Exception
{
    public HostMemoryException(string message) : base(message) { }
    public HostMemoryException(string message, Exception inner) : base(message, inner) { }
}

namespace SharpVmm.Memory;

/// <summary>A guest-physical access that does not fall inside guest RAM, or RAM that could not be mapped.</summary>
public sealed class GuestMemoryException : Exception
{
    public GuestMemoryException(string message) : base(message) { }
    public GuestMemoryException(string message, Exception inner) : base(message, inner) { }
}

namespace SharpVmm.Core;

/// <summary>Base of SharpVmm's own failures: the message is written for the user and says what to do.</summary>
public class VmmException : Exception
{
    public VmmException(string message) : base(message) { }
    public VmmException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A VM configuration that cannot be built (bad option, missing file, conflicting devices).</summary>
public class ConfigurationException(string message) : VmmException(message);

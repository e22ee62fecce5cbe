using SharpVmm.Core;

namespace SharpVmm.Devices.Net;

/// <summary>A network backend could not be created or failed: the message says what to fix (permissions, a missing library or device).</summary>
public sealed class NetBackendException : VmmException
{
    public NetBackendException(string message) : base(message) { }
    public NetBackendException(string message, Exception inner) : base(message, inner) { }
}

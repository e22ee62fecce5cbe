namespace SharpVmm.Devices.Bus;

/// <summary>Why the bus asks the machine to stop the VM.</summary>
public enum IoBusFaultKind
{
    UnmappedAccess,
    DeviceError,
}

/// <summary>A bus-level failure handed to the machine; <see cref="Exception"/> is set for device errors.</summary>
public sealed record IoBusFault(IoBusFaultKind Kind, string Message, Exception? Exception = null);

namespace SharpVmm.Monitor.Protocol;

/// <summary>QEMU's QMP error classes (QapiErrorClass); the wire names are the enum names.</summary>
public enum QmpErrorClass
{
    GenericError,
    CommandNotFound,
    DeviceNotActive,
    DeviceNotFound,
    KVMMissingCap,
}

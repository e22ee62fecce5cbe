namespace SharpVmm.Devices.Bus;

/// <summary>Which of the two x86 address spaces a device window lives in.</summary>
public enum IoSpace
{
    Port,
    Mmio,
}

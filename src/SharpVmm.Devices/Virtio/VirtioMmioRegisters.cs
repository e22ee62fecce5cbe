namespace SharpVmm.Devices.Virtio;

/// <summary>Register offsets of the virtio-mmio transport, version 2 (virtio 1.x, 4.2.2).</summary>
public static class VirtioMmioRegisters
{
    public const uint MagicValue = 0x000, Version = 0x004, DeviceId = 0x008, VendorId = 0x00c;
    public const uint DeviceFeatures = 0x010, DeviceFeaturesSel = 0x014;
    public const uint DriverFeatures = 0x020, DriverFeaturesSel = 0x024;
    public const uint QueueSel = 0x030, QueueNumMax = 0x034, QueueNum = 0x038, QueueReady = 0x044;
    public const uint QueueNotify = 0x050, InterruptStatus = 0x060, InterruptAck = 0x064, Status = 0x070;
    public const uint QueueDescLow = 0x080, QueueDescHigh = 0x084;
    public const uint QueueDriverLow = 0x090, QueueDriverHigh = 0x094;
    public const uint QueueDeviceLow = 0x0a0, QueueDeviceHigh = 0x0a4;
    public const uint ShmSel = 0x0ac, ShmLenLow = 0x0b0, ShmLenHigh = 0x0b4, ShmBaseLow = 0x0b8, ShmBaseHigh = 0x0bc;
    public const uint ConfigGeneration = 0x0fc, Config = 0x100;

    /// <summary>"virt" little-endian.</summary>
    public const uint Magic = 0x74726976;
    /// <summary>"SVMM" little-endian: the vendor ID SharpVmm's devices report.</summary>
    public const uint SharpVmmVendor = 0x4D4D5653;
    public const ulong WindowSize = 0x200;
}

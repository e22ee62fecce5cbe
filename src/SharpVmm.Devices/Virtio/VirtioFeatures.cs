namespace SharpVmm.Devices.Virtio;

/// <summary>Feature bits shared by every device type (virtio 1.x, section 6).</summary>
public static class VirtioFeatures
{
    public const int IndirectDescBit = 28;
    public const int EventIdxBit = 29;
    public const int Version1Bit = 32;
    public const int AccessPlatformBit = 33;

    public const ulong IndirectDesc = 1UL << IndirectDescBit;
    public const ulong EventIdx = 1UL << EventIdxBit;
    public const ulong Version1 = 1UL << Version1Bit;

    /// <summary>What every SharpVmm virtio device offers on top of its own bits.</summary>
    public const ulong Common = Version1 | IndirectDesc | EventIdx;
}

/// <summary>Device status register bits (virtio 1.x, 2.1).</summary>
[Flags]
public enum VirtioStatus : uint
{
    None = 0,
    Acknowledge = 1,
    Driver = 2,
    DriverOk = 4,
    FeaturesOk = 8,
    DeviceNeedsReset = 64,
    Failed = 128,
}

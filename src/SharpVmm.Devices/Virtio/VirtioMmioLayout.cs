using SharpVmm.Core;

namespace SharpVmm.Devices.Virtio;

/// <summary>
/// Where the machine puts virtio-mmio transports unless told otherwise: one page per device from
/// <see cref="FirstBase"/> (inside the 32-bit MMIO hole, clear of the IOAPIC and LAPIC), interrupts on the IOAPIC's
/// GSIs 16-23, which no ISA device claims. The transports hold their line while InterruptStatus is non-zero, so
/// describe them as level-triggered, active high.
/// </summary>
public static class VirtioMmioLayout
{
    public const ulong FirstBase = 0xD000_0000;
    public const ulong Stride = 0x1000;
    public const int FirstGsi = 16;
    public const int MaxDevices = 8;

    /// <summary>The register window base and GSI of the <paramref name="index"/>-th virtio-mmio device.</summary>
    public static (ulong Base, int Gsi) Slot(int index)
    {
        if (index < 0 || index >= MaxDevices)
            throw new ConfigurationException($"at most {MaxDevices} virtio-mmio devices fit the default layout (asked for device #{index + 1})");
        return (FirstBase + Stride * (ulong)index, FirstGsi + index);
    }
}

namespace SharpVmm.Devices.Interrupts;

/// <summary>Delivery mode field of an IOAPIC redirection entry, LVT entry or ICR (Intel SDM vol. 3, 11.6.1 / 11.5.1).</summary>
public enum ApicDeliveryMode : byte
{
    Fixed = 0,
    LowestPriority = 1,
    Smi = 2,
    Nmi = 4,
    Init = 5,
    Startup = 6,
    ExtInt = 7,
}

/// <summary>ICR destination shorthand (bits 19:18).</summary>
public enum ApicShorthand : byte
{
    None = 0,
    Self = 1,
    AllIncludingSelf = 2,
    AllExcludingSelf = 3,
}

/// <summary>
/// One interrupt message on the APIC bus, from an IOAPIC redirection entry or a local APIC's ICR. The destination
/// is 8 bits (xAPIC ICR, IOAPIC) or, from an x2APIC-mode ICR, 32 bits (<paramref name="X2ApicDestination"/>).
/// </summary>
public readonly record struct ApicMessage(
    byte Vector,
    ApicDeliveryMode Mode,
    bool LogicalDestination,
    uint Destination,
    bool LevelTriggered,
    ApicShorthand Shorthand = ApicShorthand.None,
    bool X2ApicDestination = false);

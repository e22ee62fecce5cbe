namespace SharpVmm.Devices.Interrupts;

/// <summary>xAPIC register offsets in the 4 KiB APIC page (Intel SDM vol. 3, table 11-1).</summary>
public static class ApicRegisters
{
    public const uint Id = 0x020;
    public const uint Version = 0x030;
    public const uint Tpr = 0x080;
    public const uint Apr = 0x090;
    public const uint Ppr = 0x0A0;
    public const uint Eoi = 0x0B0;
    public const uint Rrd = 0x0C0;
    public const uint Ldr = 0x0D0;
    public const uint Dfr = 0x0E0;
    public const uint Svr = 0x0F0;
    public const uint Isr = 0x100;
    public const uint Tmr = 0x180;
    public const uint Irr = 0x200;
    public const uint Esr = 0x280;
    public const uint IcrLow = 0x300;
    public const uint IcrHigh = 0x310;
    public const uint LvtTimer = 0x320;
    public const uint LvtThermal = 0x330;
    public const uint LvtPerf = 0x340;
    public const uint LvtLint0 = 0x350;
    public const uint LvtLint1 = 0x360;
    public const uint LvtError = 0x370;
    public const uint TimerInitialCount = 0x380;
    public const uint TimerCurrentCount = 0x390;
    public const uint TimerDivide = 0x3E0;

    public const uint LvtMasked = 1u << 16;

    /// <summary>MSR numbers the local APIC answers.</summary>
    public const uint MsrApicBase = 0x1B;
    public const uint MsrTscDeadline = 0x6E0;

    /// <summary>x2APIC mode: register at MMIO offset <c>o</c> is MSR <c>0x800 + (o &gt;&gt; 4)</c> (SDM table 11-6).</summary>
    public const uint X2ApicMsrFirst = 0x800, X2ApicMsrLast = 0x8FF;

    /// <summary>x2APIC-only: SELF IPI (MSR 0x83F), write-only.</summary>
    public const uint SelfIpi = 0x3F0;
}

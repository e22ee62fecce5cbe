namespace SharpVmm.Devices.Interrupts;

/// <summary>
/// One 8259A's registers and priority logic. Not thread-safe: <see cref="PicPair"/> serializes access to both chips
/// under one lock because the cascade couples them.
/// </summary>
internal sealed class Pic8259Chip(bool isMaster)
{
    public readonly bool IsMaster = isMaster;

    public byte Irr;          // interrupt request register
    public byte Isr;          // in-service register
    public byte Imr;          // interrupt mask register
    public byte Elcr;         // edge/level control (1 = level), from ports 0x4D0/0x4D1
    public byte InputLevels;  // last level seen on each IR input, for edge detection
    public byte VectorBase;   // ICW2 & 0xF8
    public byte LowestPriority = 7; // IR with the lowest priority; rotation moves it
    public byte Icw3;
    public bool AutoEoi;
    public bool RotateOnAutoEoi;
    public bool SpecialFullyNested;
    public bool SpecialMask;
    public bool LevelTriggeredAll; // ICW1.LTIM
    public bool ReadIsr;           // OCW3 RR/RIS: next read of port 0 returns ISR instead of IRR
    public bool PollPending;       // OCW3 P: next read of port 0 is a poll
    public bool Single;            // ICW1.SNGL
    public bool ExpectIcw4;
    public int InitStep;           // 0 = operational, 2..4 = waiting for ICW2..ICW4

    public byte ElcrWritableMask => IsMaster ? (byte)0xF8 : (byte)0xDE;

    private byte LevelMask => LevelTriggeredAll ? (byte)0xFF : Elcr;

    public void SetInput(int irq, bool level)
    {
        byte bit = (byte)(1 << irq);
        if ((LevelMask & bit) != 0)
        {
            if (level) Irr |= bit; else Irr &= (byte)~bit;
        }
        else if (level && (InputLevels & bit) == 0)
        {
            Irr |= bit; // rising edge; the request stays latched after the input drops
        }
        if (level) InputLevels |= bit; else InputLevels &= (byte)~bit;
    }

    /// <summary>Priority 0 (highest) .. 7 of <paramref name="irq"/> given the current rotation.</summary>
    private int PriorityOf(int irq) => (irq - LowestPriority - 1) & 7;

    /// <summary>The highest-priority IR set in <paramref name="mask"/>, or -1.</summary>
    private int HighestIn(byte mask)
    {
        if (mask == 0) return -1;
        for (int p = 0; p < 8; p++)
        {
            int irq = (LowestPriority + 1 + p) & 7;
            if ((mask & (1 << irq)) != 0) return irq;
        }
        return -1;
    }

    /// <summary>The IR this chip would present on INT now, or -1 (fully nested mode, special mask, SFNM on the master).</summary>
    public int PendingIrq()
    {
        int req = HighestIn((byte)(Irr & ~Imr));
        if (req < 0) return -1;
        byte inService = Isr;
        if (SpecialMask) inService &= (byte)~Imr;
        // In special fully nested mode the master lets a higher-priority slave request through while IR2 is in service.
        if (IsMaster && SpecialFullyNested) inService &= 0xFB;
        int cur = HighestIn(inService);
        if (cur >= 0 && PriorityOf(req) >= PriorityOf(cur)) return -1;
        return req;
    }

    /// <summary>INTA for <paramref name="irq"/>: latch it in service (unless auto-EOI) and drop an edge request.</summary>
    public void Acknowledge(int irq)
    {
        byte bit = (byte)(1 << irq);
        if ((LevelMask & bit) == 0) Irr &= (byte)~bit;
        if (AutoEoi)
        {
            if (RotateOnAutoEoi) LowestPriority = (byte)irq;
        }
        else
        {
            Isr |= bit;
        }
    }

    public void WriteCommand(byte value)
    {
        if ((value & 0x10) != 0)
        {
            // ICW1: restart initialization.
            ExpectIcw4 = (value & 0x01) != 0;
            Single = (value & 0x02) != 0;
            LevelTriggeredAll = (value & 0x08) != 0;
            Isr = 0;
            Irr = 0;
            Imr = 0;
            InputLevels = 0;
            LowestPriority = 7;
            SpecialMask = false;
            ReadIsr = false;
            PollPending = false;
            AutoEoi = false;
            RotateOnAutoEoi = false;
            SpecialFullyNested = false;
            InitStep = 2;
            return;
        }
        if ((value & 0x08) != 0)
        {
            // OCW3
            if ((value & 0x04) != 0) PollPending = true;
            if ((value & 0x02) != 0) ReadIsr = (value & 0x01) != 0;
            if ((value & 0x40) != 0) SpecialMask = (value & 0x20) != 0;
            return;
        }
        // OCW2
        int level = value & 7;
        switch (value >> 5)
        {
            case 0b001: // non-specific EOI
            case 0b101: // rotate on non-specific EOI
            {
                int irq = HighestIn(Isr);
                if (irq < 0) break;
                Isr &= (byte)~(1 << irq);
                if ((value >> 5) == 0b101) LowestPriority = (byte)irq;
                break;
            }
            case 0b011: // specific EOI
                Isr &= (byte)~(1 << level);
                break;
            case 0b111: // rotate on specific EOI
                Isr &= (byte)~(1 << level);
                LowestPriority = (byte)level;
                break;
            case 0b110: // set priority
                LowestPriority = (byte)level;
                break;
            case 0b100:
                RotateOnAutoEoi = true;
                break;
            case 0b000:
                RotateOnAutoEoi = false;
                break;
            default: // 0b010: no operation
                break;
        }
    }

    public void WriteData(byte value)
    {
        switch (InitStep)
        {
            case 2:
                VectorBase = (byte)(value & 0xF8);
                InitStep = Single ? (ExpectIcw4 ? 4 : 0) : 3;
                break;
            case 3:
                Icw3 = value;
                InitStep = ExpectIcw4 ? 4 : 0;
                break;
            case 4:
                AutoEoi = (value & 0x02) != 0;
                SpecialFullyNested = (value & 0x10) != 0;
                InitStep = 0;
                break;
            default:
                Imr = value; // OCW1
                break;
        }
    }
}

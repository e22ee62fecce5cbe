using SharpVmm.Core.State;

namespace SharpVmm.Devices.Interrupts;

public sealed partial class PicPair
{
    internal void Save(StateWriter w)
    {
        lock (_gate)
        {
            SaveChip(w, _master);
            SaveChip(w, _slave);
            w.WriteBool(_intOutput);
        }
    }

    /// <summary>Restores both chips; the INT output level is restored as it was (each LAPIC carries what it saw of it).</summary>
    internal void Load(StateReader r)
    {
        lock (_gate)
        {
            LoadChip(r, _master);
            LoadChip(r, _slave);
            _intOutput = r.ReadBool("INT output");
        }
    }

    private static void SaveChip(StateWriter w, Pic8259Chip c)
    {
        w.WriteU8(c.Irr); w.WriteU8(c.Isr); w.WriteU8(c.Imr); w.WriteU8(c.Elcr); w.WriteU8(c.InputLevels);
        w.WriteU8(c.VectorBase); w.WriteU8(c.LowestPriority); w.WriteU8(c.Icw3);
        int flags = (c.AutoEoi ? 1 : 0) | (c.RotateOnAutoEoi ? 2 : 0) | (c.SpecialFullyNested ? 4 : 0) | (c.SpecialMask ? 8 : 0)
            | (c.LevelTriggeredAll ? 16 : 0) | (c.ReadIsr ? 32 : 0) | (c.PollPending ? 64 : 0) | (c.Single ? 128 : 0) | (c.ExpectIcw4 ? 256 : 0);
        w.WriteI32(flags);
        w.WriteI32(c.InitStep);
    }

    private static void LoadChip(StateReader r, Pic8259Chip c)
    {
        string chip = c.IsMaster ? "master PIC" : "slave PIC";
        c.Irr = r.ReadU8(chip + " IRR"); c.Isr = r.ReadU8(chip + " ISR"); c.Imr = r.ReadU8(chip + " IMR");
        c.Elcr = (byte)(r.ReadU8(chip + " ELCR") & c.ElcrWritableMask); c.InputLevels = r.ReadU8(chip + " input levels");
        c.VectorBase = (byte)(r.ReadU8(chip + " vector base") & 0xF8); c.LowestPriority = (byte)(r.ReadU8(chip + " priority") & 7);
        c.Icw3 = r.ReadU8(chip + " ICW3");
        int flags = r.ReadInt(0, 511, chip + " flags");
        c.AutoEoi = (flags & 1) != 0; c.RotateOnAutoEoi = (flags & 2) != 0; c.SpecialFullyNested = (flags & 4) != 0;
        c.SpecialMask = (flags & 8) != 0; c.LevelTriggeredAll = (flags & 16) != 0; c.ReadIsr = (flags & 32) != 0;
        c.PollPending = (flags & 64) != 0; c.Single = (flags & 128) != 0; c.ExpectIcw4 = (flags & 256) != 0;
        int step = r.ReadI32(chip + " initialization step");
        if (step is not (0 or 2 or 3 or 4)) throw r.Error($"{chip} initialization step {step} is not 0, 2, 3 or 4");
        c.InitStep = step;
    }
}

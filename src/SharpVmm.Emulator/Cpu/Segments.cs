using SharpVmm.Core.Cpu;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>Segmentation: descriptor reads, checked segment loads, and the mode derived from CS/SS/CR0/EFER.</summary>
internal sealed unsafe partial class X86Cpu
{
    public bool ProtectedMode => (Cr0 & Cr0Pe) != 0;
    public bool LongModeActive => (Efer & EferLma) != 0;
    public int Iopl => (int)((FlOther >> 12) & 3);

    /// <summary>Recomputes everything derived from CS, SS, CR0 and EFER (code size, masks, effective bases, TLB tag).</summary>
    public void UpdateMode()
    {
        if (!ProtectedMode) Bitness = Sreg[CS].Db ? 32 : 16;
        else if (LongModeActive && Sreg[CS].L) Bitness = 64;
        else Bitness = Sreg[CS].Db ? 32 : 16;
        LinMask = Bitness == 64 ? ulong.MaxValue : 0xFFFF_FFFF;
        IpMask = Bitness == 64 ? ulong.MaxValue : Bitness == 32 ? 0xFFFF_FFFF : 0xFFFF;
        StackMask = Bitness == 64 ? ulong.MaxValue : Sreg[SS].Db ? 0xFFFF_FFFF : 0xFFFF;
        UserBit = Cpl == 3 ? 1UL : 0;
        for (int i = 0; i < 6; i++) UpdateSegBase(i);
        UpdateModeKey();
    }

    /// <summary>Decode mode, user bit and segment-check mask in one word: the jump cache's key, read per block.</summary>
    private ulong _modeKey;

    private void UpdateModeKey() => _modeKey = (uint)Bitness | (UserBit << 8) | (SegCheckMask << 9);

    private void UpdateSegBase(int seg)
    {
        // In 64-bit mode only FS and GS have bases.
        R[SegBaseSlot + seg] = Bitness == 64 && seg < FS ? 0 : Bitness == 64 ? Sreg[seg].Base : (uint)Sreg[seg].Base;
        UpdateSegCheck(seg);
    }

    public void SetCpl(int cpl)
    {
        Cpl = cpl;
        UserBit = cpl == 3 ? 1UL : 0;
        UpdateModeKey();
    }

    public static SegmentRegister ParseDescriptor(ushort selector, ulong d)
    {
        uint lo = (uint)d, hi = (uint)(d >> 32);
        uint limit = (lo & 0xFFFF) | (hi & 0xF_0000);
        bool g = (hi & 0x80_0000) != 0;
        if (g) limit = (limit << 12) | 0xFFF;
        return new SegmentRegister
        {
            Selector = selector,
            Base = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF00_0000),
            Limit = limit,
            Type = (byte)((hi >> 8) & 0xF),
            S = (hi & 0x1000) != 0,
            Dpl = (byte)((hi >> 13) & 3),
            Present = (hi & 0x8000) != 0,
            Avl = (hi & 0x10_0000) != 0,
            L = (hi & 0x20_0000) != 0,
            Db = (hi & 0x40_0000) != 0,
            G = g,
        };
    }

    /// <summary>Linear address of a selector's descriptor, or #GP(selector) if it lies beyond the GDT/LDT limit.</summary>
    public ulong DescriptorAddress(ushort sel, uint errorCode, int size = 8)
    {
        ulong index = (ulong)(sel & ~7);
        if ((sel & 4) != 0)
        {
            var ldt = Sreg[LDTR];
            if (ldt.Unusable || !ldt.Present || index + (ulong)size - 1 > ldt.Limit) throw Gp(errorCode);
            return ldt.Base + index;
        }
        if (index + (ulong)size - 1 > Gdtr.Limit) throw Gp(errorCode);
        return Gdtr.Base + index;
    }

    public ulong ReadDescriptor(ushort sel) => SysRead(DescriptorAddress(sel, (uint)(sel & 0xFFFC)), 8);

    private void SetAccessed(ushort sel, ulong desc)
    {
        if ((desc & (1UL << 40)) != 0) return;
        SysWrite(DescriptorAddress(sel, (uint)(sel & 0xFFFC)) + 5, 1, (byte)(desc >> 40) | 1UL);
    }

    /// <summary>MOV/POP to a data segment register or SS, with the protected-mode checks (#GP, #SS, #NP).</summary>
    public void LoadSegment(int seg, ushort sel)
    {
        if (!ProtectedMode || (FlOther & 0x2_0000) != 0)
        {
            // Real mode: only selector and base change (the cached limit and attributes stay, as on hardware).
            Sreg[seg].Selector = sel;
            Sreg[seg].Base = (ulong)sel << 4;
            Sreg[seg].Unusable = false;
            Sreg[seg].Present = true;
            UpdateSegBase(seg);
            if (seg == CS || seg == SS) UpdateMode();
            return;
        }
        uint err = (uint)(sel & 0xFFFC);
        if ((sel & 0xFFFC) == 0)
        {
            if (seg == SS && !(Bitness == 64 && Cpl != 3 && (sel & 3) == Cpl)) throw Gp(0);
            Sreg[seg] = new SegmentRegister { Selector = sel, Unusable = true, Dpl = (byte)(sel & 3) };
            UpdateSegBase(seg);
            if (seg == SS) UpdateMode();
            return;
        }
        ulong d = ReadDescriptor(sel);
        var s = ParseDescriptor(sel, d);
        int rpl = sel & 3;
        bool code = (s.Type & 8) != 0;
        if (seg == SS)
        {
            if (!s.S || code || (s.Type & 2) == 0 || rpl != Cpl || s.Dpl != Cpl) throw Gp(err);
            if (!s.Present) throw Ss(err);
        }
        else
        {
            if (!s.S || (code && (s.Type & 2) == 0)) throw Gp(err);
            bool conforming = code && (s.Type & 4) != 0;
            if (!conforming && s.Dpl < Math.Max(Cpl, rpl)) throw Gp(err);
            if (!s.Present) throw Np(err);
        }
        SetAccessed(sel, d);
        s.Type |= 1;
        Sreg[seg] = s;
        UpdateSegBase(seg);
        if (seg == SS) UpdateMode();
    }

    /// <summary>Loads CS for a far JMP/CALL/RET or IRET to privilege <paramref name="newCpl"/> (checks done by the caller).</summary>
    public void LoadCodeSegment(ushort sel, SegmentRegister s, int newCpl)
    {
        s.Selector = (ushort)((sel & ~3) | newCpl);
        s.Type |= 1;
        Sreg[CS] = s;
        SetCpl(newCpl);
        UpdateMode();
    }

    public void LoadRealCs(ushort sel)
    {
        Sreg[CS].Selector = sel;
        Sreg[CS].Base = (ulong)sel << 4;
        UpdateMode();
    }

    /// <summary>Reads and checks a code-segment descriptor for a far transfer; returns it with the CPL it runs at.</summary>
    public SegmentRegister CheckFarCodeTarget(ushort sel, bool isReturn, out int newCpl)
    {
        uint err = (uint)(sel & 0xFFFC);
        if ((sel & 0xFFFC) == 0) throw Gp(0);
        ulong d = ReadDescriptor(sel);
        var s = ParseDescriptor(sel, d);
        int rpl = sel & 3;
        if (!s.S || (s.Type & 8) == 0) throw Gp(err); // call gates / task switches are not implemented
        bool conforming = (s.Type & 4) != 0;
        if (isReturn)
        {
            if (rpl < Cpl) throw Gp(err);
            if (conforming ? s.Dpl > rpl : s.Dpl != rpl) throw Gp(err);
            newCpl = rpl;
        }
        else
        {
            if (conforming ? s.Dpl > Cpl : (s.Dpl != Cpl || rpl > Cpl)) throw Gp(err);
            newCpl = Cpl;
        }
        if (!s.Present) throw Np(err);
        if (LongModeActive && s.L && s.Db) throw Gp(err);
        SetAccessed(sel, d);
        return s;
    }

    /// <summary>After a return to an outer privilege level, data segments the new CPL may not use become null.</summary>
    public void NullifyInaccessibleSegments()
    {
        foreach (int seg in (ReadOnlySpan<int>)[ES, DS, FS, GS])
        {
            var s = Sreg[seg];
            bool conformingCode = (s.Type & 0xC) == 0xC;
            if (s.Unusable || conformingCode || !s.S) continue;
            if (s.Dpl < Cpl)
            {
                // FS/GS bases survive in 64-bit mode (the kernel relies on it with SWAPGS).
                Sreg[seg] = new SegmentRegister { Unusable = true, Base = Bitness == 64 ? s.Base : 0 };
                UpdateSegBase(seg);
            }
        }
    }
}

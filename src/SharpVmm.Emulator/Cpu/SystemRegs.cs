using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Interrupts;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>Control and debug registers, MSRs, the TSC, fast system calls, LTR/LLDT and port I/O.</summary>
internal sealed unsafe partial class X86Cpu
{
    public const uint MsrTsc = 0x10, MsrApicBase = 0x1B, MsrSysenterCs = 0x174, MsrSysenterEsp = 0x175, MsrSysenterEip = 0x176;
    public const uint MsrPat = 0x277, MsrEfer = 0xC000_0080, MsrStar = 0xC000_0081, MsrLstar = 0xC000_0082;
    public const uint MsrCstar = 0xC000_0083, MsrSfmask = 0xC000_0084, MsrFsBase = 0xC000_0100, MsrGsBase = 0xC000_0101;
    public const uint MsrKernelGsBase = 0xC000_0102, MsrTscAux = 0xC000_0103;

    private readonly Dictionary<uint, ulong> _msrs = [];
    public ulong Pat;
    private long _tscOffset;

    public ulong ReadTsc() => (ulong)((long)_clock.ReadTsc() + _tscOffset);

    public ulong ReadCr(int n) => n switch
    {
        0 => Cr0,
        2 => Cr2,
        3 => Cr3,
        4 => Cr4,
        8 => _apic is not null ? ReadTpr() : Cr8,
        _ => throw Ud(),
    };

    private ulong ReadTpr()
    {
        uint v = 0;
        _apic!.Read(0x80, new Span<byte>(&v, 4));
        return (v >> 4) & 0xF;
    }

    public void WriteCr(int n, ulong v)
    {
        switch (n)
        {
            case 0:
            {
                if (Bitness == 64 || LongModeActive) { if ((v >> 32) != 0) throw Gp(); }
                v = (uint)v | Cr0Et; // ET is hardwired
                if ((v & Cr0Pg) != 0 && (v & Cr0Pe) == 0) throw Gp();
                if ((v & Cr0Nw) != 0 && (v & Cr0Cd) == 0) throw Gp();
                bool pgOn = (v & Cr0Pg) != 0 && (Cr0 & Cr0Pg) == 0;
                bool pgOff = (v & Cr0Pg) == 0 && (Cr0 & Cr0Pg) != 0;
                if (pgOn && (Efer & EferLme) != 0)
                {
                    if ((Cr4 & Cr4Pae) == 0) throw Gp();
                    Efer |= EferLma;
                }
                if (pgOff && LongModeActive)
                {
                    if (Bitness == 64 || (Cr4 & Cr4Pcide) != 0) throw Gp();
                    Efer &= ~EferLma;
                }
                Cr0 = v;
                UpdateMode();
                FlushTlb();
                return;
            }
            case 2: Cr2 = v; return;
            case 3:
                // With CR4.PCIDE, bits 11:0 are the PCID and bit 63 asks to keep that PCID's TLB entries; neither is
                // part of the table address. The TLB is not tagged by PCID, so every CR3 write drops the non-global
                // entries: always allowed, since a TLB may forget entries at any time.
                Cr3 = LongModeActive ? v & 0x000F_FFFF_FFFF_FFFFUL : (uint)v;
                FlushNonGlobalTlb();
                return;
            case 4:
            {
                // Everything else is reserved here.
                const ulong allowed = Cr4Vme | Cr4Pvi | Cr4Tsd | Cr4De | Cr4Pse | Cr4Pae | Cr4Mce | Cr4Pge | Cr4Pce | Cr4Osfxsr | Cr4OsXmmExcpt
                                      | Cr4Umip | Cr4Pcide | Cr4Osxsave | Cr4Smep | Cr4Smap | Cr4Pke;
                if ((v & ~allowed) != 0) throw Gp();
                if (LongModeActive && (v & Cr4Pae) == 0) throw Gp();
                // PCIDE can be turned on only in IA-32e mode and with PCID 0 in CR3.
                if ((v & Cr4Pcide) != 0 && (Cr4 & Cr4Pcide) == 0 && (!LongModeActive || (Cr3 & 0xFFF) != 0)) throw Gp();
                Cr4 = v;
                FlushTlb();
                return;
            }
            case 8:
                if ((v & ~0xFUL) != 0) throw Gp();
                Cr8 = v;
                if (_apic is not null)
                {
                    uint tpr = (uint)(v << 4);
                    _apic.Write(0x80, new ReadOnlySpan<byte>(&tpr, 4));
                    _attention = 1;
                }
                return;
            default:
                throw Ud();
        }
    }

    public ulong ReadDr(int n)
    {
        if (n is 4 or 5) { if ((Cr4 & 8) != 0) throw Ud(); n += 2; }
        return Dr[n];
    }

    public void WriteDr(int n, ulong v)
    {
        if (n is 4 or 5) { if ((Cr4 & 8) != 0) throw Ud(); n += 2; }
        if (n == 6) v = (v & 0xE00F) | 0xFFFF_0FF0;
        else if (n == 7) v = (v & 0xFFFF_2FFF) | 0x400;
        Dr[n] = v;
    }

    public ulong ReadMsrOrZero(uint msr) => _msrs.TryGetValue(msr, out var v) ? v : 0;

    private static bool IsMtrr(uint msr) => msr is 0xFE or 0x2FF or 0x250 or 0x258 or 0x259 or (>= 0x200 and <= 0x20F) or (>= 0x268 and <= 0x26F);

    /// <summary>Stored MSRs the CPU model has (beyond those with their own fields); anything else is #GP.</summary>
    private static bool IsStoredMsr(uint msr) => IsMtrr(msr) || msr is MsrSysenterCs or MsrSysenterEsp or MsrSysenterEip
        or MsrStar or MsrLstar or MsrCstar or MsrSfmask or MsrKernelGsBase or MsrTscAux
        or 0x8B /* microcode revision */ or 0x1A0 /* misc enable */ or 0x179 or 0x17A /* MCG_CAP/STATUS */;

    public ulong ReadMsr(uint msr)
    {
        switch (msr)
        {
            case MsrTsc: return ReadTsc();
            case MsrApicBase: return ApicBase;
            case MsrEfer: return Efer;
            case MsrPat: return Pat;
            case MsrFsBase: return Sreg[FS].Base;
            case MsrGsBase: return Sreg[GS].Base;
            case 0xFE: return 0x508; // MTRRcap: 8 variable ranges, fixed ranges, write-combining
            case MsrArchCapabilities: return ArchCapabilities;
            case 0x1A0: return _msrs.TryGetValue(msr, out var me) ? me : 1; // fast strings
        }
        if (_apic is not null)
        {
            var result = _apic.ReadMsr(msr, out ulong av);
            if (result == ApicMsrResult.Done) return av;
            if (result == ApicMsrResult.Fault) throw Gp();
        }
        if (IsStoredMsr(msr)) return ReadMsrOrZero(msr);
        throw Gp();
    }

    public void WriteMsr(uint msr, ulong v)
    {
        switch (msr)
        {
            case MsrTsc:
                _tscOffset = (long)v - (long)_clock.ReadTsc();
                return;
            case MsrApicBase:
                // The APIC checks the mode transition (xAPIC/x2APIC/disabled); the MMIO page follows its answer.
                var baseResult = _apic?.WriteMsr(msr, v) ?? ApicMsrResult.NotApic;
                if (baseResult == ApicMsrResult.Fault) throw Gp();
                if (baseResult == ApicMsrResult.Done)
                {
                    _apic!.ReadMsr(msr, out ApicBase);
                    _attention = 1;
                }
                else
                {
                    if ((v & ~(0xF_FFFF_F000UL | 0x900)) != 0) throw Gp(); // no x2APIC without an APIC
                    ApicBase = (v & ~0xFFUL) | (ApicBase & 0x100); // BSP flag is read-only
                }
                FlushTlb();
                return;
            case MsrEfer:
            {
                // SCE, LME, NXE are writable; LMA only follows CR0.PG.
                if ((v & ~(EferSce | EferLme | EferLma | EferNxe)) != 0) throw Gp();
                if ((Cr0 & Cr0Pg) != 0 && ((v ^ Efer) & EferLme) != 0) throw Gp();
                Efer = (v & (EferSce | EferLme | EferNxe)) | (Efer & EferLma);
                FlushTlb();
                return;
            }
            case MsrPat:
                for (int i = 0; i < 8; i++)
                    if (((v >> (i * 8)) & 0xFF) is 2 or 3 or > 7) throw Gp();
                Pat = v;
                return;
            case MsrFsBase: if (!IsCanonical(v)) throw Gp(); Sreg[FS].Base = v; UpdateMode(); return;
            case MsrGsBase: if (!IsCanonical(v)) throw Gp(); Sreg[GS].Base = v; UpdateMode(); return;
            case 0xFE:
            case 0x179:
            case MsrArchCapabilities:
                throw Gp(); // read-only
            case MsrLstar:
            case MsrCstar:
            case MsrKernelGsBase:
            case MsrSysenterEsp:
            case MsrSysenterEip:
                if (!IsCanonical(v)) throw Gp();
                break;
            case MsrTscAux:
                v &= 0xFFFF_FFFF;
                break;
        }
        if (_apic is not null)
        {
            var result = _apic.WriteMsr(msr, v);
            if (result == ApicMsrResult.Fault) throw Gp();
            if (result == ApicMsrResult.Done) { _attention = 1; return; } // an EOI, TPR or self-IPI may make one deliverable
        }
        if (!IsStoredMsr(msr)) throw Gp();
        _msrs[msr] = v;
    }

    public static bool IsCanonical(ulong v) => (ulong)((long)(v << 16) >> 16) == v;

    private static SegmentRegister Flat(ushort sel, byte type, int dpl, bool l, bool db) => new()
    {
        Selector = sel, Base = 0, Limit = 0xFFFF_FFFF, Type = type, S = true, Present = true, Dpl = (byte)dpl, L = l, Db = db, G = true,
    };

    public void Syscall(ulong next)
    {
        if ((Efer & EferSce) == 0 || !LongModeActive) throw Ud();
        ulong star = ReadMsrOrZero(MsrStar);
        ushort sel = (ushort)(star >> 32);
        if (Bitness == 64)
        {
            R[1] = next;
            R[11] = GetRflags() & ~0x1_0000UL;
            Rip = ReadMsrOrZero(MsrLstar);
        }
        else
        {
            R[1] = (uint)next;
            R[11] = GetRflags() & ~0x1_0000UL;
            Rip = ReadMsrOrZero(MsrCstar);
        }
        SetRflags(GetRflags() & ~ReadMsrOrZero(MsrSfmask) & ~0x1_0000UL);
        Sreg[CS] = Flat((ushort)(sel & 0xFFFC), 0xB, 0, true, false);
        Sreg[SS] = Flat((ushort)((sel + 8) & 0xFFFC), 0x3, 0, false, true);
        SetCpl(0);
        UpdateMode();
    }

    public void Sysret(int size)
    {
        if ((Efer & EferSce) == 0 || !LongModeActive) throw Ud();
        if (Cpl != 0) throw Gp();
        ulong star = ReadMsrOrZero(MsrStar);
        ushort sel = (ushort)(star >> 48);
        if (size == 8)
        {
            if (!IsCanonical(R[1])) throw Gp();
            Sreg[CS] = Flat((ushort)((sel + 16) | 3), 0xB, 3, true, false);
            Rip = R[1];
        }
        else
        {
            Sreg[CS] = Flat((ushort)(sel | 3), 0xB, 3, false, true);
            Rip = (uint)R[1];
        }
        Sreg[SS].Selector = (ushort)((sel + 8) | 3);
        Sreg[SS].Dpl = 3;
        Sreg[SS].Unusable = false;
        Sreg[SS].Present = true;
        Sreg[SS].S = true;
        Sreg[SS].Type = 3;
        Sreg[SS].Db = true;
        Sreg[SS].Limit = 0xFFFF_FFFF;
        SetRflags((R[11] & 0x3C_7FD7UL) | 2);
        SetCpl(3);
        UpdateMode();
        _attention = 1;
    }

    public void Sysenter()
    {
        ulong cs = ReadMsrOrZero(MsrSysenterCs) & 0xFFFC;
        if (!ProtectedMode || cs == 0) throw Gp();
        bool lm = LongModeActive;
        SetRflags(GetRflags() & ~(IF | 0x2_0000UL | 0x1_0000UL));
        Sreg[CS] = Flat((ushort)cs, 0xB, 0, lm, !lm);
        Sreg[SS] = Flat((ushort)(cs + 8), 0x3, 0, false, true);
        SetCpl(0);
        UpdateMode();
        R[4] = ReadMsrOrZero(MsrSysenterEsp);
        Rip = ReadMsrOrZero(MsrSysenterEip);
        if (!lm) { R[4] = (uint)R[4]; Rip = (uint)Rip; }
    }

    public void Sysexit(int size)
    {
        ulong cs = ReadMsrOrZero(MsrSysenterCs) & 0xFFFC;
        if (!ProtectedMode || cs == 0 || Cpl != 0) throw Gp();
        if (size == 8)
        {
            if (!IsCanonical(R[2]) || !IsCanonical(R[1])) throw Gp();
            Sreg[CS] = Flat((ushort)((cs + 32) | 3), 0xB, 3, true, false);
            Sreg[SS] = Flat((ushort)((cs + 40) | 3), 0x3, 3, false, true);
            Rip = R[2];
            R[4] = R[1];
        }
        else
        {
            Sreg[CS] = Flat((ushort)((cs + 16) | 3), 0xB, 3, false, true);
            Sreg[SS] = Flat((ushort)((cs + 24) | 3), 0x3, 3, false, true);
            Rip = (uint)R[2];
            R[4] = (uint)R[1];
        }
        SetCpl(3);
        UpdateMode();
    }

    /// <summary>LTR (marks the TSS busy) and LLDT.</summary>
    public void LoadSystemSegment(bool tr, ushort sel)
    {
        uint err = (uint)(sel & 0xFFFC);
        if ((sel & 0xFFFC) == 0)
        {
            if (tr) throw Gp(0);
            Sreg[LDTR] = new SegmentRegister { Selector = sel, Unusable = true };
            return;
        }
        if ((sel & 4) != 0) throw Gp(err);
        int size = LongModeActive ? 16 : 8;
        ulong addr = DescriptorAddress(sel, err, size);
        ulong d = SysRead(addr, 8);
        var s = ParseDescriptor(sel, d);
        if (s.S) throw Gp(err);
        if (tr ? s.Type is not (0x1 or 0x9) : s.Type != 0x2) throw Gp(err);
        if (!s.Present) throw Np(err);
        if (LongModeActive) s.Base |= SysRead(addr + 8, 4) << 32;
        if (tr)
        {
            SysWrite(addr + 5, 1, (byte)(d >> 40) | 2UL);
            s.Type |= 2;
        }
        Sreg[tr ? TR : LDTR] = s;
    }

    /// <summary>LSL, LAR, VERR, VERW: descriptor queries that report success in ZF.</summary>
    public void SegmentQuery(ref Op op, ref Instruction ins)
    {
        ushort sel = ins.Mnemonic is Mnemonic.Verr or Mnemonic.Verw
            ? (ushort)(ins.Op0Kind == OpKind.Register ? GetReg(op.Reg, 2) : Read16(Ea(ref op)))
            : (ushort)(ins.Op1Kind == OpKind.Register ? GetReg(op.Rm, 2) : Read16(Ea(ref op)));
        bool ok = false;
        SegmentRegister s = default;
        ulong d = 0;
        if ((sel & 0xFFFC) != 0)
        {
            ulong index = (ulong)(sel & ~7);
            bool inTable = (sel & 4) != 0 ? !Sreg[LDTR].Unusable && index + 7 <= Sreg[LDTR].Limit : index + 7 <= Gdtr.Limit;
            if (inTable)
            {
                d = ReadDescriptor(sel);
                s = ParseDescriptor(sel, d);
                bool conforming = s.S && (s.Type & 0xC) == 0xC;
                bool privOk = conforming || (s.Dpl >= Cpl && s.Dpl >= (sel & 3));
                ok = ins.Mnemonic switch
                {
                    Mnemonic.Verr => s.S && privOk && ((s.Type & 8) == 0 || (s.Type & 2) != 0),
                    Mnemonic.Verw => s.S && privOk && (s.Type & 0xA) == 2,
                    Mnemonic.Lsl => privOk && (s.S || s.Type is 1 or 2 or 3 or 9 or 0xB),
                    _ => privOk && (s.S || s.Type is not (0 or 8 or 0xA or 0xD)),
                };
            }
        }
        ulong f = ComputeArith() & ~ZF;
        if (ok)
        {
            f |= ZF;
            int size = ins.Op0Register.GetSize();
            if (ins.Mnemonic == Mnemonic.Lsl) SetReg(op.Reg, size, s.Limit);
            else if (ins.Mnemonic == Mnemonic.Lar) SetReg(op.Reg, size, (d >> 32) & 0x00F0_FF00);
        }
        SetEager(f);
    }

    public void CheckIoPermission(ushort port, int size)
    {
        if (!ProtectedMode || (Cpl <= Iopl && (FlOther & 0x2_0000) == 0)) return;
        var tr = Sreg[TR];
        if (tr.Unusable || (tr.Type & 8) == 0 || tr.Limit < 0x67) throw Gp();
        ulong mapBase = SysRead(tr.Base + 0x66, 2);
        ulong byteOff = mapBase + (ulong)(port >> 3);
        if (byteOff + 1 > tr.Limit) throw Gp();
        ulong bits = SysRead(tr.Base + byteOff, 2);
        if (((bits >> (port & 7)) & ((1UL << size) - 1)) != 0) throw Gp();
    }

    public ulong PortRead(ushort port, int size)
    {
        ulong v = 0;
        _bus.PioRead(port, new Span<byte>(&v, size));
        return v;
    }

    public void PortWrite(ushort port, int size, ulong v) => _bus.PioWrite(port, new ReadOnlySpan<byte>(&v, size));
}

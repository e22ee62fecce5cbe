using SharpVmm.Core.Cpu;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>Import and export of the architectural state in the accelerator-neutral <see cref="VcpuState"/>.</summary>
internal sealed unsafe partial class X86Cpu
{
    private static readonly uint[] ExportedMsrs =
    [
        MsrStar, MsrLstar, MsrCstar, MsrSfmask, MsrKernelGsBase, MsrTscAux, MsrSysenterCs, MsrSysenterEsp, MsrSysenterEip,
    ];

    public VcpuState GetState()
    {
        var s = new VcpuState();
        for (int i = 0; i < 16; i++) s.Gprs[i] = R[i];
        s.Rip = Rip;
        s.Rflags = GetRflags();
        s.Es = Sreg[ES]; s.Cs = Sreg[CS]; s.Ss = Sreg[SS]; s.Ds = Sreg[DS]; s.Fs = Sreg[FS]; s.Gs = Sreg[GS];
        s.Tr = Sreg[TR]; s.Ldtr = Sreg[LDTR];
        s.Gdt = Gdtr; s.Idt = Idtr;
        s.Cr0 = Cr0; s.Cr2 = Cr2; s.Cr3 = Cr3; s.Cr4 = Cr4; s.Cr8 = _apic is not null ? ReadTpr() : Cr8;
        s.Efer = Efer; s.ApicBase = ApicBase; s.Xcr0 = Xcr0; s.Pkru = Pkru;
        foreach (uint m in ExportedMsrs)
            if (_msrs.TryGetValue(m, out var v)) s.Msrs[m] = v;
        foreach (var kv in _msrs)
            if (IsMtrr(kv.Key)) s.Msrs[kv.Key] = kv.Value;
        s.Msrs[MsrPat] = Pat;
        s.Msrs[MsrTsc] = ReadTsc();
        var f = s.Fpu;
        f.Fcw = Fcw; f.Fsw = Fsw; f.Ftw = Ftw; f.LastOpcode = FpuLastOpcode; f.LastIp = FpuLastIp; f.LastDp = FpuLastDp;
        f.Mxcsr = Mxcsr;
        for (int i = 0; i < 8; i++)
        {
            int phys = (FpuTop + i) & 7;
            var slot = f.St.AsSpan(i * 16, 10);
            ToExtended(Fpr[phys], slot);
            if (double.IsNaN(Fpr[phys])) { BitConverter.TryWriteBytes(slot, Mmx[phys]); slot[8] = 0xFF; slot[9] = 0xFF; }
        }
        for (int i = 0; i < 32; i++) BitConverter.TryWriteBytes(f.Xmm.AsSpan(i * 8, 8), Xmm[i]);
        s.Events = new VcpuEvents
        {
            InterruptShadow = (byte)(_shadow ? 1 : 0),
            NmiMasked = _nmiMasked,
            Halted = Halted,
        };
        return s;
    }

    public void SetState(VcpuState s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.Gprs.Length < 16) throw new ArgumentException("VcpuState.Gprs must hold 16 registers", nameof(s));
        for (int i = 0; i < 16; i++) R[i] = s.Gprs[i];
        Rip = s.Rip;
        SetRflags(s.Rflags);
        Sreg[ES] = s.Es; Sreg[CS] = s.Cs; Sreg[SS] = s.Ss; Sreg[DS] = s.Ds; Sreg[FS] = s.Fs; Sreg[GS] = s.Gs;
        Sreg[TR] = s.Tr; Sreg[LDTR] = s.Ldtr;
        Gdtr = s.Gdt; Idtr = s.Idt;
        Cr0 = s.Cr0 | 0x10; Cr2 = s.Cr2; Cr3 = s.Cr3; Cr4 = s.Cr4; Cr8 = s.Cr8;
        Efer = s.Efer;
        // LMA follows LME and paging, whatever the snapshot says.
        if ((Efer & EferLme) != 0 && (Cr0 & (Cr0Pg | Cr0Pe)) == (Cr0Pg | Cr0Pe)) Efer |= EferLma; else Efer &= ~EferLma;
        ApicBase = s.ApicBase;
        Xcr0 = (s.Xcr0 & XcrSupported) | 1; // components this CPU lacks (AVX from a KVM snapshot) cannot be restored
        Pkru = s.Pkru; // the TLB is flushed below
        _msrs.Clear();
        foreach (var kv in s.Msrs)
        {
            switch (kv.Key)
            {
                case MsrPat: Pat = kv.Value; break;
                case MsrTsc: _tscOffset = (long)kv.Value - (long)_clock.ReadTsc(); break;
                case MsrEfer: case MsrApicBase: case MsrFsBase: case MsrGsBase: break;
                default:
                    if (IsStoredMsr(kv.Key)) _msrs[kv.Key] = kv.Value;
                    break;
            }
        }
        if (_apic is not null && s.Cr8 != 0)
        {
            uint tpr = (uint)(s.Cr8 << 4);
            _apic.Write(0x80, new ReadOnlySpan<byte>(&tpr, 4));
        }
        var f = s.Fpu;
        Fcw = f.Fcw; Fsw = f.Fsw; Ftw = f.Ftw; FpuLastOpcode = f.LastOpcode; FpuLastIp = f.LastIp; FpuLastDp = f.LastDp;
        Mxcsr = f.Mxcsr;
        for (int i = 0; i < 8; i++)
        {
            Fpr[(FpuTop + i) & 7] = FromExtended(f.St.AsSpan(i * 16, 10));
            Mmx[(FpuTop + i) & 7] = BitConverter.ToUInt64(f.St.AsSpan(i * 16, 8));
        }
        for (int i = 0; i < 32; i++) Xmm[i] = BitConverter.ToUInt64(f.Xmm.AsSpan(i * 8, 8));
        Cpl = (Cr0 & Cr0Pe) == 0 ? 0 : s.Cs.Dpl;
        _shadow = (s.Events.InterruptShadow & 3) != 0;
        _nmiMasked = s.Events.NmiMasked;
        Halted = s.Events.Halted;
        _waitForSipi = false; // an explicit state means the CPU runs from it
        _shutdown = false; // a triple fault not yet reported belongs to the replaced state (a reset raced it)
        UpdateMode();
        FlushTlb();
        _attention = 1;
    }
}

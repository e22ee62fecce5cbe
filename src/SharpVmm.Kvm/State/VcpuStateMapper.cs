using SharpVmm.Core.Cpu;
using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm.State;

/// <summary>Field-for-field conversions between KVM's structs and the portable <see cref="VcpuState"/>.</summary>
public static unsafe class VcpuStateMapper
{
    public static void ToState(in KvmRegs r, VcpuState s)
    {
        s[Gpr.Rax] = r.Rax; s[Gpr.Rcx] = r.Rcx; s[Gpr.Rdx] = r.Rdx; s[Gpr.Rbx] = r.Rbx;
        s[Gpr.Rsp] = r.Rsp; s[Gpr.Rbp] = r.Rbp; s[Gpr.Rsi] = r.Rsi; s[Gpr.Rdi] = r.Rdi;
        s[Gpr.R8] = r.R8; s[Gpr.R9] = r.R9; s[Gpr.R10] = r.R10; s[Gpr.R11] = r.R11;
        s[Gpr.R12] = r.R12; s[Gpr.R13] = r.R13; s[Gpr.R14] = r.R14; s[Gpr.R15] = r.R15;
        s.Rip = r.Rip;
        s.Rflags = r.Rflags;
    }

    public static KvmRegs ToRegs(VcpuState s) => new()
    {
        Rax = s[Gpr.Rax], Rcx = s[Gpr.Rcx], Rdx = s[Gpr.Rdx], Rbx = s[Gpr.Rbx],
        Rsp = s[Gpr.Rsp], Rbp = s[Gpr.Rbp], Rsi = s[Gpr.Rsi], Rdi = s[Gpr.Rdi],
        R8 = s[Gpr.R8], R9 = s[Gpr.R9], R10 = s[Gpr.R10], R11 = s[Gpr.R11],
        R12 = s[Gpr.R12], R13 = s[Gpr.R13], R14 = s[Gpr.R14], R15 = s[Gpr.R15],
        Rip = s.Rip,
        Rflags = s.Rflags | 0x2,
    };

    public static SegmentRegister ToSegment(in KvmSegment k) => new()
    {
        Base = k.Base, Limit = k.Limit, Selector = k.Selector, Type = k.Type, Present = k.Present != 0, Dpl = k.Dpl,
        Db = k.Db != 0, S = k.S != 0, L = k.L != 0, G = k.G != 0, Avl = k.Avl != 0, Unusable = k.Unusable != 0,
    };

    public static KvmSegment ToKvm(in SegmentRegister s) => new()
    {
        Base = s.Base, Limit = s.Limit, Selector = s.Selector, Type = (byte)(s.Type & 0xF), Present = B(s.Present),
        Dpl = (byte)(s.Dpl & 3), Db = B(s.Db), S = B(s.S), L = B(s.L), G = B(s.G), Avl = B(s.Avl), Unusable = B(s.Unusable),
    };

    public static void ToState(in KvmSregs k, VcpuState s)
    {
        s.Cs = ToSegment(k.Cs); s.Ds = ToSegment(k.Ds); s.Es = ToSegment(k.Es); s.Fs = ToSegment(k.Fs);
        s.Gs = ToSegment(k.Gs); s.Ss = ToSegment(k.Ss); s.Tr = ToSegment(k.Tr); s.Ldtr = ToSegment(k.Ldt);
        s.Gdt = new DescriptorTable { Base = k.Gdt.Base, Limit = k.Gdt.Limit };
        s.Idt = new DescriptorTable { Base = k.Idt.Base, Limit = k.Idt.Limit };
        s.Cr0 = k.Cr0; s.Cr2 = k.Cr2; s.Cr3 = k.Cr3; s.Cr4 = k.Cr4; s.Cr8 = k.Cr8;
        s.Efer = k.Efer;
        s.ApicBase = k.ApicBase;
    }

    /// <summary>The sregs for <paramref name="s"/>; the interrupt bitmap stays empty because a pending interrupt travels in the vCPU events.</summary>
    public static KvmSregs ToSregs(VcpuState s) => new()
    {
        Cs = ToKvm(s.Cs), Ds = ToKvm(s.Ds), Es = ToKvm(s.Es), Fs = ToKvm(s.Fs),
        Gs = ToKvm(s.Gs), Ss = ToKvm(s.Ss), Tr = ToKvm(s.Tr), Ldt = ToKvm(s.Ldtr),
        Gdt = new KvmDtable { Base = s.Gdt.Base, Limit = s.Gdt.Limit },
        Idt = new KvmDtable { Base = s.Idt.Base, Limit = s.Idt.Limit },
        Cr0 = s.Cr0, Cr2 = s.Cr2, Cr3 = s.Cr3, Cr4 = s.Cr4, Cr8 = s.Cr8,
        Efer = s.Efer,
        ApicBase = s.ApicBase,
    };

    public static FpuState ToState(in KvmFpu k)
    {
        var f = new FpuState
        {
            Fcw = k.Fcw, Fsw = k.Fsw, Ftw = k.Ftwx, LastOpcode = k.LastOpcode, LastIp = k.LastIp, LastDp = k.LastDp,
            Mxcsr = k.Mxcsr,
        };
        fixed (byte* st = k.Fpr) new ReadOnlySpan<byte>(st, 8 * 16).CopyTo(f.St);
        fixed (byte* xmm = k.Xmm) new ReadOnlySpan<byte>(xmm, 16 * 16).CopyTo(f.Xmm);
        return f;
    }

    public static KvmFpu ToKvm(FpuState f)
    {
        if (f.St.Length != 8 * 16 || f.Xmm.Length != 16 * 16)
            throw new KvmException(KvmErrorKind.InvalidArgument, $"FPU state must hold 128 bytes of ST and 256 of XMM registers, got {f.St.Length} and {f.Xmm.Length}");
        var k = new KvmFpu
        {
            Fcw = f.Fcw, Fsw = f.Fsw, Ftwx = f.Ftw, LastOpcode = f.LastOpcode, LastIp = f.LastIp, LastDp = f.LastDp,
            Mxcsr = f.Mxcsr,
        };
        f.St.CopyTo(new Span<byte>(k.Fpr, 8 * 16));
        f.Xmm.CopyTo(new Span<byte>(k.Xmm, 16 * 16));
        return k;
    }

    /// <summary>Events as VcpuEvents; <paramref name="halted"/> comes from the MP state (in-kernel irqchip only).</summary>
    public static VcpuEvents ToState(in KvmVcpuEvents k, bool halted) => new()
    {
        ExceptionPending = k.ExceptionInjected != 0 || k.ExceptionPending != 0,
        ExceptionVector = k.ExceptionNr,
        ExceptionHasErrorCode = k.ExceptionHasErrorCode != 0,
        ExceptionErrorCode = k.ExceptionErrorCode,
        InterruptPending = k.InterruptInjected != 0,
        InterruptVector = k.InterruptNr,
        // VcpuState: bit 0 STI, bit 1 MOV SS; KVM has them the other way round.
        InterruptShadow = (byte)(((k.InterruptShadow & KvmVcpuEvents.ShadowSti) != 0 ? 1 : 0) | ((k.InterruptShadow & KvmVcpuEvents.ShadowMovSs) != 0 ? 2 : 0)),
        NmiPending = k.NmiPending != 0 || k.NmiInjected != 0,
        NmiMasked = k.NmiMasked != 0,
        Halted = halted,
    };

    public static KvmVcpuEvents ToKvm(VcpuEvents e) => new()
    {
        // An exception re-enters as injected: it had been decided before the snapshot and must be delivered first.
        ExceptionInjected = B(e.ExceptionPending),
        ExceptionNr = e.ExceptionVector,
        ExceptionHasErrorCode = B(e.ExceptionHasErrorCode),
        ExceptionErrorCode = e.ExceptionErrorCode,
        InterruptInjected = B(e.InterruptPending),
        InterruptNr = e.InterruptVector,
        InterruptShadow = (byte)(((e.InterruptShadow & 1) != 0 ? KvmVcpuEvents.ShadowSti : 0) | ((e.InterruptShadow & 2) != 0 ? KvmVcpuEvents.ShadowMovSs : 0)),
        NmiPending = B(e.NmiPending),
        NmiMasked = B(e.NmiMasked),
        Flags = KvmVcpuEvents.ValidNmiPending | KvmVcpuEvents.ValidShadow,
    };

    private static byte B(bool b) => b ? (byte)1 : (byte)0;
}

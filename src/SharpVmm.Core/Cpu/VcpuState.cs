namespace SharpVmm.Core.Cpu;

/// <summary>General-purpose register indexes in x86 encoding order (the order of ModRM reg fields and Iced's register numbering).</summary>
public enum Gpr
{
    Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8, R9, R10, R11, R12, R13, R14, R15,
}

/// <summary>
/// The architectural state of one vCPU in a form both accelerators read and write, so a snapshot
/// taken on one can be restored on the other. Plain data: no behaviour, no accelerator types.
/// </summary>
public sealed class VcpuState
{
    /// <summary>RAX..R15 indexed by <see cref="Gpr"/>.</summary>
    public ulong[] Gprs { get; init; } = new ulong[16];
    public ulong Rip { get; set; }
    /// <summary>RFLAGS; bit 1 always reads as 1 on real hardware.</summary>
    public ulong Rflags { get; set; } = 0x2;

    public SegmentRegister Cs, Ds, Es, Fs, Gs, Ss, Tr, Ldtr;
    public DescriptorTable Gdt, Idt;

    public ulong Cr0 { get; set; } = 0x6000_0010;
    public ulong Cr2 { get; set; }
    public ulong Cr3 { get; set; }
    public ulong Cr4 { get; set; }
    public ulong Cr8 { get; set; }
    public ulong Efer { get; set; }
    public ulong ApicBase { get; set; } = 0xFEE0_0900;
    /// <summary>XCR0, the XSAVE feature mask (x87 always on): what XSAVE/XRSTOR manage and the OS has enabled.</summary>
    public ulong Xcr0 { get; set; } = 1;
    /// <summary>PKRU, the protection-key rights register (two bits per key; 0 is its reset value).</summary>
    public uint Pkru { get; set; }

    /// <summary>Model-specific registers beyond the ones above (STAR, LSTAR, KERNEL_GS_BASE, TSC, PAT, ...).</summary>
    public SortedDictionary<uint, ulong> Msrs { get; init; } = [];

    public FpuState Fpu { get; set; } = new();

    /// <summary>The local APIC register page (1 KiB, KVM's kvm_lapic_state layout), or null if not captured.</summary>
    public byte[]? Lapic { get; set; }

    public VcpuEvents Events { get; set; } = new();

    public ulong this[Gpr r]
    {
        get => Gprs[(int)r];
        set => Gprs[(int)r] = value;
    }

    public VcpuState Clone()
    {
        return new VcpuState
        {
            Gprs = (ulong[])Gprs.Clone(),
            Rip = Rip, Rflags = Rflags,
            Cs = Cs, Ds = Ds, Es = Es, Fs = Fs, Gs = Gs, Ss = Ss, Tr = Tr, Ldtr = Ldtr,
            Gdt = Gdt, Idt = Idt,
            Cr0 = Cr0, Cr2 = Cr2, Cr3 = Cr3, Cr4 = Cr4, Cr8 = Cr8, Efer = Efer, ApicBase = ApicBase, Xcr0 = Xcr0, Pkru = Pkru,
            Msrs = new SortedDictionary<uint, ulong>(Msrs),
            Fpu = Fpu.Clone(),
            Lapic = (byte[]?)Lapic?.Clone(),
            Events = Events with { },
        };
    }
}

/// <summary>A segment register with its hidden descriptor cache, field for field as KVM's kvm_segment.</summary>
public struct SegmentRegister
{
    public ulong Base;
    public uint Limit;
    public ushort Selector;
    /// <summary>Descriptor type (4 bits: code/data, accessed, readable/writable, conforming/expand-down).</summary>
    public byte Type;
    public bool Present;
    public byte Dpl;
    /// <summary>Default operand size (D/B bit).</summary>
    public bool Db;
    /// <summary>Code or data segment (S bit); false for system segments such as TSS and LDT.</summary>
    public bool S;
    /// <summary>64-bit code segment (L bit).</summary>
    public bool L;
    /// <summary>Limit is in 4 KiB units (G bit).</summary>
    public bool G;
    public bool Avl;
    public bool Unusable;

    /// <summary>A real-mode segment: base = selector * 16, 64 KiB limit, read/write.</summary>
    public static SegmentRegister RealMode(ushort selector, byte type = 0x3) => new()
    {
        Selector = selector, Base = (ulong)selector << 4, Limit = 0xFFFF, Type = type, Present = true, S = true,
    };
}

public struct DescriptorTable
{
    public ulong Base;
    public ushort Limit;
}

/// <summary>x87/MMX/SSE state in FXSAVE terms.</summary>
public sealed class FpuState
{
    public ushort Fcw { get; set; } = 0x37F;
    public ushort Fsw { get; set; }
    /// <summary>Abridged tag word as FXSAVE stores it (one bit per register, 1 = valid).</summary>
    public byte Ftw { get; set; }
    public ushort LastOpcode { get; set; }
    public ulong LastIp { get; set; }
    public ulong LastDp { get; set; }
    public uint Mxcsr { get; set; } = 0x1F80;
    /// <summary>ST0..ST7 (or MM0..MM7), 16 bytes each, 80-bit values in the low 10 bytes.</summary>
    public byte[] St { get; init; } = new byte[8 * 16];
    /// <summary>XMM0..XMM15, 16 bytes each.</summary>
    public byte[] Xmm { get; init; } = new byte[16 * 16];

    public FpuState Clone() => new()
    {
        Fcw = Fcw, Fsw = Fsw, Ftw = Ftw, LastOpcode = LastOpcode, LastIp = LastIp, LastDp = LastDp, Mxcsr = Mxcsr,
        St = (byte[])St.Clone(), Xmm = (byte[])Xmm.Clone(),
    };
}

/// <summary>Events in flight between instructions: what KVM calls kvm_vcpu_events.</summary>
public sealed record VcpuEvents
{
    public bool ExceptionPending { get; init; }
    public byte ExceptionVector { get; init; }
    public bool ExceptionHasErrorCode { get; init; }
    public uint ExceptionErrorCode { get; init; }
    public bool InterruptPending { get; init; }
    public byte InterruptVector { get; init; }
    /// <summary>Interrupts blocked for one instruction after STI (bit 0) or MOV SS (bit 1).</summary>
    public byte InterruptShadow { get; init; }
    public bool NmiPending { get; init; }
    public bool NmiMasked { get; init; }
    public bool Halted { get; init; }
}

using System.Buffers.Binary;
using System.Text;
using SharpVmm.Core.Cpu;
using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Monitor.Hmp;

/// <summary>
/// Formats a vCPU's state in the layout of QEMU's <c>info registers</c> (x86): RAX=... lines in 64-bit code,
/// EAX=... otherwise. Debug registers are left out because <see cref="VcpuState"/> does not carry them.
/// </summary>
public static class RegisterDump
{

    private static readonly string[] LegacySystemTypes =
    [
        "Reserved", "TSS16-avl", "LDT", "TSS16-busy", "CallGate16", "TaskGate", "IntGate16", "TrapGate16",
        "Reserved", "TSS32-avl", "Reserved", "TSS32-busy", "CallGate32", "Reserved", "IntGate32", "TrapGate32",
    ];

    private static readonly string[] LongSystemTypes =
    [
        "Reserved", "Reserved", "LDT", "Reserved", "Reserved", "Reserved", "Reserved", "Reserved",
        "Reserved", "TSS64-avl", "Reserved", "TSS64-busy", "CallGate64", "Reserved", "IntGate64", "TrapGate64",
    ];

    public static string Format(VcpuState s)
    {
        var sb = new StringBuilder();
        bool lma = (s.Efer & EferLma) != 0;
        bool code64 = lma && s.Cs.L;
        bool pe = (s.Cr0 & Cr0Pe) != 0;
        if (code64)
        {
            Line(sb, $"RAX={s[Gpr.Rax]:x16} RBX={s[Gpr.Rbx]:x16} RCX={s[Gpr.Rcx]:x16} RDX={s[Gpr.Rdx]:x16}");
            Line(sb, $"RSI={s[Gpr.Rsi]:x16} RDI={s[Gpr.Rdi]:x16} RBP={s[Gpr.Rbp]:x16} RSP={s[Gpr.Rsp]:x16}");
            Line(sb, $"R8 ={s[Gpr.R8]:x16} R9 ={s[Gpr.R9]:x16} R10={s[Gpr.R10]:x16} R11={s[Gpr.R11]:x16}");
            Line(sb, $"R12={s[Gpr.R12]:x16} R13={s[Gpr.R13]:x16} R14={s[Gpr.R14]:x16} R15={s[Gpr.R15]:x16}");
            sb.Append($"RIP={s.Rip:x16} RFL={(uint)s.Rflags:x8} ");
        }
        else
        {
            Line(sb, $"EAX={(uint)s[Gpr.Rax]:x8} EBX={(uint)s[Gpr.Rbx]:x8} ECX={(uint)s[Gpr.Rcx]:x8} EDX={(uint)s[Gpr.Rdx]:x8}");
            Line(sb, $"ESI={(uint)s[Gpr.Rsi]:x8} EDI={(uint)s[Gpr.Rdi]:x8} EBP={(uint)s[Gpr.Rbp]:x8} ESP={(uint)s[Gpr.Rsp]:x8}");
            sb.Append($"EIP={(uint)s.Rip:x8} EFL={(uint)s.Rflags:x8} ");
        }
        int cpl = pe ? s.Ss.Dpl : 0;
        Line(sb, $"[{FlagLetters(s.Rflags)}] CPL={cpl} II={(s.Events.InterruptShadow != 0 ? 1 : 0)} A20=1 SMM=0 HLT={(s.Events.Halted ? 1 : 0)}");

        Segment(sb, "ES", s.Es, lma, pe);
        Segment(sb, "CS", s.Cs, lma, pe);
        Segment(sb, "SS", s.Ss, lma, pe);
        Segment(sb, "DS", s.Ds, lma, pe);
        Segment(sb, "FS", s.Fs, lma, pe);
        Segment(sb, "GS", s.Gs, lma, pe);
        Segment(sb, "LDT", s.Ldtr, lma, pe);
        Segment(sb, "TR", s.Tr, lma, pe);
        if (lma)
        {
            Line(sb, $"GDT=     {s.Gdt.Base:x16} {s.Gdt.Limit:x8}");
            Line(sb, $"IDT=     {s.Idt.Base:x16} {s.Idt.Limit:x8}");
            Line(sb, $"CR0={(uint)s.Cr0:x8} CR2={s.Cr2:x16} CR3={s.Cr3:x16} CR4={(uint)s.Cr4:x8}");
        }
        else
        {
            Line(sb, $"GDT=     {(uint)s.Gdt.Base:x8} {s.Gdt.Limit:x8}");
            Line(sb, $"IDT=     {(uint)s.Idt.Base:x8} {s.Idt.Limit:x8}");
            Line(sb, $"CR0={(uint)s.Cr0:x8} CR2={(uint)s.Cr2:x8} CR3={(uint)s.Cr3:x8} CR4={(uint)s.Cr4:x8}");
        }
        Line(sb, $"EFER={s.Efer:x16}");

        var fpu = s.Fpu;
        Line(sb, $"FCW={fpu.Fcw:x4} FSW={fpu.Fsw:x4} [ST={(fpu.Fsw >> 11) & 7}] FTW={fpu.Ftw:x2} MXCSR={fpu.Mxcsr:x8}");
        for (int i = 0; i < 8; i += 2)
            Line(sb, $"{Fpr(fpu, i)} {Fpr(fpu, i + 1)}");
        int xmmCount = lma ? 16 : 8;
        for (int i = 0; i < xmmCount; i += 2)
            Line(sb, $"{Xmm(fpu, i)} {Xmm(fpu, i + 1)}");
        return sb.ToString();
    }

    private static void Line(StringBuilder sb, string text) => sb.Append(text).Append('\n');

    private static string FlagLetters(ulong f)
    {
        Span<char> c = stackalloc char[7];
        c[0] = (f & (1 << 10)) != 0 ? 'D' : '-';
        c[1] = (f & (1 << 11)) != 0 ? 'O' : '-';
        c[2] = (f & (1 << 7)) != 0 ? 'S' : '-';
        c[3] = (f & (1 << 6)) != 0 ? 'Z' : '-';
        c[4] = (f & (1 << 4)) != 0 ? 'A' : '-';
        c[5] = (f & (1 << 2)) != 0 ? 'P' : '-';
        c[6] = (f & 1) != 0 ? 'C' : '-';
        return new string(c);
    }

    /// <summary>The descriptor's attribute bits as they sit in its high dword (type, S, DPL, P, AVL, L, D/B, G).</summary>
    private static uint Attributes(SegmentRegister r)
    {
        if (r.Unusable) return 0;
        return (uint)(r.Type & 0xF) << 8 | (r.S ? 1u << 12 : 0) | (uint)(r.Dpl & 3) << 13 | (r.Present ? 1u << 15 : 0)
            | (r.Avl ? 1u << 20 : 0) | (r.L ? 1u << 21 : 0) | (r.Db ? 1u << 22 : 0) | (r.G ? 1u << 23 : 0);
    }

    private static void Segment(StringBuilder sb, string name, SegmentRegister r, bool lma, bool pe)
    {
        string baseText = lma ? r.Base.ToString("x16") : ((uint)r.Base).ToString("x8");
        sb.Append($"{name,-3}={r.Selector:x4} {baseText} {r.Limit:x8} {Attributes(r):x8}");
        if (pe && r.Present && !r.Unusable)
        {
            sb.Append($" DPL={r.Dpl & 3} ");
            if (r.S)
            {
                bool code = (r.Type & 8) != 0;
                if (code)
                    sb.Append(r.L ? "CS64" : r.Db ? "CS32" : "CS16").Append(" [").Append((r.Type & 4) != 0 ? 'C' : '-').Append((r.Type & 2) != 0 ? 'R' : '-');
                else
                    sb.Append(r.Db || lma ? "DS  " : "DS16").Append(" [").Append((r.Type & 4) != 0 ? 'E' : '-').Append((r.Type & 2) != 0 ? 'W' : '-');
                sb.Append((r.Type & 1) != 0 ? 'A' : '-').Append(']');
            }
            else
            {
                sb.Append((lma ? LongSystemTypes : LegacySystemTypes)[r.Type & 0xF]);
            }
        }
        sb.Append('\n');
    }

    private static string Fpr(FpuState fpu, int i)
    {
        var st = fpu.St.AsSpan(i * 16, 16);
        ulong mantissa = BinaryPrimitives.ReadUInt64LittleEndian(st);
        ushort exponent = BinaryPrimitives.ReadUInt16LittleEndian(st[8..]);
        return $"FPR{i}={mantissa:x16} {exponent:x4}";
    }

    private static string Xmm(FpuState fpu, int i)
    {
        var x = fpu.Xmm.AsSpan(i * 16, 16);
        ulong lo = BinaryPrimitives.ReadUInt64LittleEndian(x);
        ulong hi = BinaryPrimitives.ReadUInt64LittleEndian(x[8..]);
        return $"XMM{i:d2}={hi:x16} {lo:x16}";
    }
}

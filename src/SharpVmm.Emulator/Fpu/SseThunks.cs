using System.Runtime.InteropServices;
using Iced.Intel;

namespace SharpVmm.Emulator;

/// <summary>
/// Native thunks that run one SSE floating-point instruction on the host under a given MXCSR: .NET intrinsics always
/// run under the runtime's default MXCSR (round to nearest, no FTZ/DAZ, flags invisible), so they cannot honour the
/// guest's rounding control or report its sticky exception flags.
/// Every thunk has the C signature <c>ulong thunk(Vector128* a, Vector128* b, uint* mxcsr)</c>: it saves the host's
/// MXCSR, loads *mxcsr, runs <c>op xmm0, xmm1</c> with xmm0 = *a and xmm1 = *b, stores xmm0 back to *a and the
/// resulting MXCSR to *mxcsr, restores the host's MXCSR and returns RAX (the integer result of CVT*2SI, the RFLAGS
/// of COMIS/UCOMIS). The caller passes an MXCSR with every exception masked, so the host never faults.
/// Code lives in one anonymous mapping, written once and then made read+execute.
/// </summary>
internal static unsafe partial class SseThunks
{
    private const int Slot = 64, MappingSize = 16 * 1024;

    /// <summary>Indexed by <see cref="SseKind"/>; 0 where the operation does not read or write MXCSR.</summary>
    private static readonly nint[] ByKind = new nint[256];
    /// <summary>CMPPS, CMPSS, CMPPD, CMPSD × predicate 0..7.</summary>
    private static readonly nint[] Cmp = new nint[32];
    /// <summary>COMISS, UCOMISS, COMISD, UCOMISD.</summary>
    private static readonly nint[] Comi = new nint[4];
    /// <summary>CVTSI2SS r32, r64, CVTSI2SD r32, r64 (the integer is the low 4/8 bytes of *b).</summary>
    private static readonly nint[] IntToFp = new nint[4];
    /// <summary>CVT(T)SS2SI, CVT(T)SD2SI: index = double*4 + truncate*2 + 64-bit destination.</summary>
    private static readonly nint[] FpToInt = new nint[8];

    /// <summary>MXCSR bits the host accepts (FXSAVE's MXCSR_MASK): without DAZ support bit 6 must never reach LDMXCSR.</summary>
    public static readonly uint HostMxcsrMask;

    static SseThunks()
    {
        nint mem = Libc.Mmap(0, MappingSize, Libc.ProtRead | Libc.ProtWrite, Libc.MapPrivate | Libc.MapAnonymous, -1, 0);
        if (mem == -1)
            throw new EmulatorException($"cannot map memory for the SSE thunks (errno {Marshal.GetLastPInvokeError()})");
        new Span<byte>((void*)mem, MappingSize).Fill(0xCC); // INT3 between thunks
        int next = 0;

        nint Emit(Action<Assembler> body)
        {
            var a = new Assembler(64);
            body(a);
            var w = new BufferWriter();
            a.Assemble(w, (ulong)(mem + next));
            if (w.Length > Slot) throw new InvalidOperationException("an SSE thunk outgrew its slot");
            if (next + Slot > MappingSize - Slot) throw new InvalidOperationException("the SSE thunk page is full");
            w.CopyTo(new Span<byte>((void*)(mem + next), Slot));
            nint at = mem + next;
            next += Slot;
            return at;
        }

        // fxsave [rdi]; ret — run once to read MXCSR_MASK.
        nint fx = Emit(a => { a.fxsave(AssemblerRegisters.__[AssemblerRegisters.rdi]); a.ret(); });

        foreach (SseKind k in Enum.GetValues<SseKind>())
        {
            if (!HonoursMxcsr(k) || k is SseKind.CmpPS or SseKind.CmpSS or SseKind.CmpPD or SseKind.CmpSD) continue;
            var c = XmmCode(k.ToString().ToLowerInvariant(), false);
            ByKind[(int)k] = Emit(a => Vector(a, Instruction.Create(c, Register.XMM0, Register.XMM1)));
        }
        string[] cmps = ["cmpps", "cmpss", "cmppd", "cmpsd"];
        for (int i = 0; i < 4; i++)
        {
            var c = XmmCode(cmps[i], true);
            for (int p = 0; p < 8; p++)
            {
                int pred = p;
                Cmp[i * 8 + p] = Emit(a => Vector(a, Instruction.Create(c, Register.XMM0, Register.XMM1, pred)));
            }
        }
        Code[] comi = [Code.Comiss_xmm_xmmm32, Code.Ucomiss_xmm_xmmm32, Code.Comisd_xmm_xmmm64, Code.Ucomisd_xmm_xmmm64];
        for (int i = 0; i < 4; i++)
        {
            var c = comi[i];
            Comi[i] = Emit(a => Wrap(a, () =>
            {
                a.movdqu(AssemblerRegisters.xmm0, AssemblerRegisters.__xmmword_ptr[AssemblerRegisters.rdi]);
                a.movdqu(AssemblerRegisters.xmm1, AssemblerRegisters.__xmmword_ptr[AssemblerRegisters.rsi]);
                a.AddInstruction(Instruction.Create(c, Register.XMM0, Register.XMM1));
                a.pushfq();
                a.pop(AssemblerRegisters.rax);
            }));
        }
        Code[] i2f = [Code.Cvtsi2ss_xmm_rm32, Code.Cvtsi2ss_xmm_rm64, Code.Cvtsi2sd_xmm_rm32, Code.Cvtsi2sd_xmm_rm64];
        for (int i = 0; i < 4; i++)
        {
            var c = i2f[i];
            IntToFp[i] = Emit(a => Wrap(a, () =>
            {
                a.movdqu(AssemblerRegisters.xmm0, AssemblerRegisters.__xmmword_ptr[AssemblerRegisters.rdi]);
                a.AddInstruction(Instruction.Create(c, Register.XMM0, new MemoryOperand(Register.RSI)));
                a.movdqu(AssemblerRegisters.__xmmword_ptr[AssemblerRegisters.rdi], AssemblerRegisters.xmm0);
            }));
        }
        Code[] f2i =
        [
            Code.Cvtss2si_r32_xmmm32, Code.Cvtss2si_r64_xmmm32, Code.Cvttss2si_r32_xmmm32, Code.Cvttss2si_r64_xmmm32,
            Code.Cvtsd2si_r32_xmmm64, Code.Cvtsd2si_r64_xmmm64, Code.Cvttsd2si_r32_xmmm64, Code.Cvttsd2si_r64_xmmm64,
        ];
        for (int i = 0; i < 8; i++)
        {
            var c = f2i[i];
            var dst = (i & 1) != 0 ? Register.RAX : Register.EAX; // a 32-bit destination zero-extends into RAX
            FpToInt[i] = Emit(a => Wrap(a, () =>
            {
                a.movdqu(AssemblerRegisters.xmm1, AssemblerRegisters.__xmmword_ptr[AssemblerRegisters.rsi]);
                a.AddInstruction(Instruction.Create(c, dst, Register.XMM1));
            }));
        }

        if (Libc.Mprotect(mem, MappingSize, Libc.ProtRead | Libc.ProtExec) != 0)
            throw new EmulatorException($"cannot make the SSE thunks executable (errno {Marshal.GetLastPInvokeError()})");

        byte* area = stackalloc byte[512 + 16];
        byte* aligned = (byte*)(((nint)area + 15) & ~(nint)15);
        new Span<byte>(aligned, 512).Clear();
        ((delegate* unmanaged[SuppressGCTransition]<byte*, void>)fx)(aligned);
        uint mask = *(uint*)(aligned + 28);
        HostMxcsrMask = mask == 0 ? 0xFFBFu : mask; // SDM: a zero MXCSR_MASK means the default, DAZ unsupported
    }

    /// <summary>Floating-point SseKinds whose result or flags depend on MXCSR (RCP/RSQRT and pure data moves do not).</summary>
    public static bool HonoursMxcsr(SseKind k) => k is >= SseKind.AddPS and <= SseKind.CmpSD
        or >= SseKind.CvtDQ2PS and <= SseKind.CvtSD2SS && k != SseKind.CvtDQ2PD;

    public static nint ForKind(SseKind k, byte imm) => k switch
    {
        SseKind.CmpPS => Cmp[imm & 7],
        SseKind.CmpSS => Cmp[8 + (imm & 7)],
        SseKind.CmpPD => Cmp[16 + (imm & 7)],
        SseKind.CmpSD => Cmp[24 + (imm & 7)],
        _ => ByKind[(int)k],
    };

    /// <param name="isDouble">COMISD/UCOMISD.</param><param name="ordered">COMIS (signals on QNaN) rather than UCOMIS.</param>
    public static nint ForComi(bool isDouble, bool ordered) => Comi[(isDouble ? 2 : 0) + (ordered ? 0 : 1)];

    public static nint ForIntToFp(bool isDouble, bool int64) => IntToFp[(isDouble ? 2 : 0) + (int64 ? 1 : 0)];

    public static nint ForFpToInt(bool isDouble, bool truncate, bool int64) => FpToInt[(isDouble ? 4 : 0) + (truncate ? 2 : 0) + (int64 ? 1 : 0)];

    /// <summary>The legacy-SSE "op xmm, xmm/m" encoding of a mnemonic (exactly one exists per SSE/SSE2 float op).</summary>
    private static Code XmmCode(string mnemonic, bool imm8)
    {
        string head = char.ToUpperInvariant(mnemonic[0]) + mnemonic[1..];
        foreach (string width in (string[])["128", "64", "32"])
            if (Enum.TryParse<Code>($"{head}_xmm_xmmm{width}{(imm8 ? "_imm8" : "")}", out var c)) return c;
        throw new InvalidOperationException($"no legacy xmm encoding for {mnemonic}");
    }

    private static void Vector(Assembler a, Instruction op) => Wrap(a, () =>
    {
        a.movdqu(AssemblerRegisters.xmm0, AssemblerRegisters.__xmmword_ptr[AssemblerRegisters.rdi]);
        a.movdqu(AssemblerRegisters.xmm1, AssemblerRegisters.__xmmword_ptr[AssemblerRegisters.rsi]);
        a.AddInstruction(op);
        a.movdqu(AssemblerRegisters.__xmmword_ptr[AssemblerRegisters.rdi], AssemblerRegisters.xmm0);
    });

    /// <summary>
    /// Host MXCSR saved on the stack, guest MXCSR from [rdx] around the body, result MXCSR to [rdx].
    /// A fast path that skipped both LDMXCSRs when the guest runs the default control bits was measured on the dev
    /// host (AMD EPYC): 13 ns per call either way, so the simpler form stays.
    /// </summary>
    private static void Wrap(Assembler a, Action body)
    {
        a.sub(AssemblerRegisters.rsp, 8);
        a.stmxcsr(AssemblerRegisters.__dword_ptr[AssemblerRegisters.rsp]);
        a.ldmxcsr(AssemblerRegisters.__dword_ptr[AssemblerRegisters.rdx]);
        body();
        a.stmxcsr(AssemblerRegisters.__dword_ptr[AssemblerRegisters.rdx]);
        a.ldmxcsr(AssemblerRegisters.__dword_ptr[AssemblerRegisters.rsp]);
        a.add(AssemblerRegisters.rsp, 8);
        a.ret();
    }

    private sealed class BufferWriter : CodeWriter
    {
        private readonly byte[] _buf = new byte[256];
        public int Length { get; private set; }
        public override void WriteByte(byte value) => _buf[Length++] = value;
        public void CopyTo(Span<byte> dst) => _buf.AsSpan(0, Length).CopyTo(dst);
    }
}

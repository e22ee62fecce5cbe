using System.Runtime.InteropServices;

namespace SharpVmm.Emulator;

/// <summary>
/// One decoded guest instruction in the form the interpreter runs: a handler and the operands it needs,
/// pre-digested so the hot loop never touches Iced. Offsets are relative to the block start, so a block
/// is valid at whatever virtual address maps its physical page.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct Op
{
    // 40 bytes: a booted Linux guest caches a few hundred thousand of these, so every field is as narrow as its
    // widest use. A displacement that does not fit 32 bits (moffs64, RIP-relative near ±2 GiB) is moved into a
    // preceding WideDisp op by the translator.
    public delegate*<X86Cpu, ref Op, void> H;
    /// <summary>Immediate (already sign-extended to the operand size), or a branch target relative to the block start.</summary>
    public ulong Imm;
    /// <summary>Memory displacement; for RIP-relative operands the offset from the block start.</summary>
    public int Disp;
    /// <summary>Second immediate (ENTER's nesting level, far-pointer selector), or the index in <see cref="Block.Instrs"/> for slow handlers.</summary>
    public ushort Imm2;
    public ushort Off;
    public ushort NextOff;
    /// <summary>Operand size in bytes (1, 2, 4, 8; 16 for XMM).</summary>
    public byte Size;
    /// <summary>Size of a second operand (source of MOVZX/MOVSX, shift count kind...).</summary>
    public byte Size2;
    public byte Reg;
    public byte Rm;
    public byte Base;
    public byte Index;
    public byte Scale;
    public byte Seg;
    /// <summary>Condition code for Jcc/SETcc/CMOVcc, or a small per-handler selector.</summary>
    public byte Cc;
    /// <summary><see cref="OpFlags"/>.</summary>
    public byte Flags;
    /// <summary>The effective address is masked with <c>ulong.MaxValue &gt;&gt; AddrShift</c>: 0 (64-bit), 32 (32-bit) or 48 (16-bit addressing).</summary>
    public byte AddrShift;
    /// <summary>What a following Jcc may fuse with (<see cref="FuseKind"/>); on a fused op, the kind it was made from.</summary>
    public byte Fuse;

    /// <summary>Mask of the effective address (0xFFFF, 0xFFFF_FFFF or all ones).</summary>
    public readonly ulong AddrMask
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        get => ulong.MaxValue >> AddrShift;
    }

    public static byte ShiftForAddressSize(int bytes) => bytes == 8 ? (byte)0 : bytes == 4 ? (byte)32 : (byte)48;
}

/// <summary>CMP/TEST forms that can absorb the Jcc after them (Exec/Fused.cs).</summary>
internal static class FuseKind
{
    public const byte None = 0, CmpRR64 = 1, CmpRR32 = 2, TestRR64 = 3, TestRR32 = 4, CmpRI64 = 5, CmpRI32 = 6, TestRI64 = 7, TestRI32 = 8;

    public static bool IsTest(byte k) => k is TestRR64 or TestRR32 or TestRI64 or TestRI32;
    public static bool IsImm(byte k) => k >= CmpRI64;
    public static int Size(byte k) => k is CmpRR64 or TestRR64 or CmpRI64 or TestRI64 ? 8 : 4;
}

internal static class OpFlags
{
    public const byte Lock = 1, Rep = 2, Repne = 4, Mem = 8, ImmSrc = 16;
    /// <summary>The instruction references the stack implicitly (PUSH, POP, CALL, RET, ENTER, LEAVE, IRET...).</summary>
    public const byte Stack = 32;
    /// <summary>The handler reads the Iced instruction at <see cref="Block.Instrs"/>[Imm2].</summary>
    public const byte UsesInstr = 64;
    /// <summary>A CMP/TEST fused with the Jcc after it (Exec/Fused.cs): two instructions in one op.</summary>
    public const byte Fused = 128;
}

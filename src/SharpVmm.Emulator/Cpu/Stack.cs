using System.Runtime.CompilerServices;

namespace SharpVmm.Emulator;

/// <summary>Effective addresses and the stack.</summary>
internal sealed unsafe partial class X86Cpu
{
    /// <summary>Linear address of the op's memory operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Ea(ref Op op)
        => ((((ulong)(long)op.Disp + R[op.Base] + (R[op.Index] << op.Scale)) & op.AddrMask) + R[SegBaseSlot + op.Seg]) & LinMask;

    /// <summary>The offset part only (LEA).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong EaOffset(ref Op op) => ((ulong)(long)op.Disp + R[op.Base] + (R[op.Index] << op.Scale)) & op.AddrMask;

    public object AtomicLock => _cache.AtomicLock;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push(int size, ulong v)
    {
        ulong rsp = R[4];
        ulong sp = (rsp - (ulong)size) & StackMask;
        WriteMem((R[SegBaseSlot + SS] + sp) & LinMask, size, v);
        R[4] = (rsp & ~StackMask) | sp;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Pop(int size)
    {
        ulong rsp = R[4];
        ulong v = ReadMem((R[SegBaseSlot + SS] + (rsp & StackMask)) & LinMask, size);
        R[4] = (rsp & ~StackMask) | ((rsp + (ulong)size) & StackMask);
        return v;
    }

    /// <summary>Reads the stack at RSP + <paramref name="offset"/> without moving RSP.</summary>
    public ulong PeekStack(int offset, int size)
        => ReadMem((R[SegBaseSlot + SS] + ((R[4] + (ulong)offset) & StackMask)) & LinMask, size);

    public ulong CurrentIp(ref Op op) => (R[BlockRipReg] + op.Off) & IpMask;
    public ulong NextIp(ref Op op) => (R[BlockRipReg] + op.NextOff) & IpMask;
}

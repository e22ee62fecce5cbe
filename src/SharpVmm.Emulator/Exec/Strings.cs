namespace SharpVmm.Emulator;

/// <summary>
/// String instructions. op.Size = element size, op.Size2 = address size, op.Seg = source segment (DS unless
/// overridden). REP forms end their block and run in slices so interrupts and kicks are not held off.
/// </summary>
internal static unsafe partial class Handlers
{
    private const int RepSlice = 16384;

    private static bool IsRep(ref Op op) => (op.Flags & (OpFlags.Rep | OpFlags.Repne)) != 0;

    private static ulong SrcAddr(X86Cpu c, ref Op op) => (c.R[X86Cpu.SegBaseSlot + op.Seg] + c.GetReg(6, op.Size2)) & c.LinMask;
    private static ulong DstAddr(X86Cpu c, ref Op op) => (c.R[X86Cpu.SegBaseSlot + X86Cpu.ES] + c.GetReg(7, op.Size2)) & c.LinMask;

    private static void Advance(X86Cpu c, int reg, ref Op op)
    {
        ulong step = c.DirectionDown ? (ulong)(-op.Size) : (ulong)op.Size;
        c.SetReg(reg, op.Size2, (c.GetReg(reg, op.Size2) + step) & X86Cpu.SizeMask(op.Size2));
    }

    /// <summary>Runs <paramref name="one"/> once, or under REP until RCX is 0 (or the compare ends it), in slices.</summary>
    private static void RunString(X86Cpu c, ref Op op, delegate*<X86Cpu, ref Op, bool> one)
    {
        if (!IsRep(ref op)) { one(c, ref op); return; }
        int asz = op.Size2;
        for (int n = 0; n < RepSlice; n++)
        {
            ulong cnt = c.GetReg(1, asz);
            if (cnt == 0) { c.Rip = c.NextIp(ref op); return; }
            bool more = one(c, ref op);
            c.SetReg(1, asz, cnt - 1);
            if (!more || cnt == 1) { c.Rip = c.NextIp(ref op); return; }
        }
        c.Rip = c.CurrentIp(ref op); // resume the same instruction after an interrupt check
    }

    private static bool MovsOne(X86Cpu c, ref Op op)
    {
        ulong v = c.ReadMem(SrcAddr(c, ref op), op.Size);
        c.WriteMem(DstAddr(c, ref op), op.Size, v);
        Advance(c, 6, ref op);
        Advance(c, 7, ref op);
        return true;
    }

    private static bool StosOne(X86Cpu c, ref Op op)
    {
        c.WriteMem(DstAddr(c, ref op), op.Size, c.GetReg(0, op.Size));
        Advance(c, 7, ref op);
        return true;
    }

    private static bool LodsOne(X86Cpu c, ref Op op)
    {
        c.SetReg(0, op.Size, c.ReadMem(SrcAddr(c, ref op), op.Size));
        Advance(c, 6, ref op);
        return true;
    }

    private static bool CmpsOne(X86Cpu c, ref Op op)
    {
        ulong a = c.ReadMem(SrcAddr(c, ref op), op.Size);
        ulong b = c.ReadMem(DstAddr(c, ref op), op.Size);
        OpCmp.Do(c, a, b, op.Size);
        Advance(c, 6, ref op);
        Advance(c, 7, ref op);
        return RepContinues(c, ref op);
    }

    private static bool ScasOne(X86Cpu c, ref Op op)
    {
        ulong b = c.ReadMem(DstAddr(c, ref op), op.Size);
        OpCmp.Do(c, c.GetReg(0, op.Size), b, op.Size);
        Advance(c, 7, ref op);
        return RepContinues(c, ref op);
    }

    private static bool RepContinues(X86Cpu c, ref Op op)
    {
        bool zf = c.Cond(4);
        return (op.Flags & OpFlags.Repne) != 0 ? !zf : zf;
    }

    private static bool InsOne(X86Cpu c, ref Op op)
    {
        ushort port = (ushort)c.R[2];
        c.CheckIoPermission(port, op.Size);
        ulong la = DstAddr(c, ref op);
        c.Translate(la, X86Cpu.AccWrite, c.UserBit != 0); // fault before the device sees the read
        c.WriteMem(la, op.Size, c.PortRead(port, op.Size));
        Advance(c, 7, ref op);
        return true;
    }

    private static bool OutsOne(X86Cpu c, ref Op op)
    {
        ushort port = (ushort)c.R[2];
        c.CheckIoPermission(port, op.Size);
        c.PortWrite(port, op.Size, c.ReadMem(SrcAddr(c, ref op), op.Size));
        Advance(c, 6, ref op);
        return true;
    }

    public static void Movs(X86Cpu c, ref Op op) => RunString(c, ref op, &MovsOne);
    public static void Stos(X86Cpu c, ref Op op) => RunString(c, ref op, &StosOne);
    public static void Lods(X86Cpu c, ref Op op) => RunString(c, ref op, &LodsOne);
    public static void Cmps(X86Cpu c, ref Op op) => RunString(c, ref op, &CmpsOne);
    public static void Scas(X86Cpu c, ref Op op) => RunString(c, ref op, &ScasOne);
    public static void Ins(X86Cpu c, ref Op op) => RunString(c, ref op, &InsOne);
    public static void Outs(X86Cpu c, ref Op op) => RunString(c, ref op, &OutsOne);
}

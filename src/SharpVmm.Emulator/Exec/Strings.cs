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

    public static void Movs(X86Cpu c, ref Op op)
    {
        if (!BulkEligible(c, ref op) || !RepMovsBulk(c, ref op)) RunString(c, ref op, &MovsOne);
    }

    public static void Stos(X86Cpu c, ref Op op)
    {
        if (!BulkEligible(c, ref op) || !RepStosBulk(c, ref op)) RunString(c, ref op, &StosOne);
    }

    // ---------------------------------------------------------------- REP MOVS / REP STOS in bulk
    // Kernels clear and copy pages with REP STOSQ / REP MOVSQ (clear_page, copy_page, memset, memcpy, clear_user):
    // element by element that is one handler call per 8 bytes. Where both pages are already in the TLB as plain RAM,
    // the elements up to the nearer page end are done as one host fill or copy, with the same result and the same
    // RCX/RSI/RDI a one-by-one run leaves; everything else (a TLB miss, MMIO, a code page, dirty logging, a backward
    // or overlapping copy) takes one element through the ordinary path, which also refills the TLB.

    /// <summary>Forward REP with 64-bit addresses (what a 64-bit kernel and glibc use); other forms stay element-wise.</summary>
    private static bool BulkEligible(X86Cpu c, ref Op op) => IsRep(ref op) && op.Size2 == 8 && !c.DirectionDown;

    /// <summary>Runs a REP STOS to its end or to the slice budget; always true (it handles every element itself).</summary>
    private static bool RepStosBulk(X86Cpu c, ref Op op)
    {
        int size = op.Size;
        ulong value = c.GetReg(0, size);
        long budget = RepSlice * 8L;
        while (true)
        {
            ulong cnt = c.R[1];
            if (cnt == 0) { c.Rip = c.NextIp(ref op); return true; }
            ulong la = DstAddr(c, ref op);
            ulong room = (0x1000 - (la & 0xFFF)) / (ulong)size;
            byte* p = room == 0 ? null : c.CachedWritePointer(la);
            ulong n;
            if (p == null)
            {
                StosOne(c, ref op); // may fault with RCX and RDI as they are: precise
                n = 1;
            }
            else
            {
                n = Math.Min(Math.Min(cnt, room), (ulong)budget);
                Fill(p, size, value, (int)n);
                c.R[7] += n * (ulong)size;
            }
            c.R[1] = cnt - n;
            budget -= p == null ? 8 : (long)n; // an element the slow way costs what 8 in bulk do
            if (cnt == n) { c.Rip = c.NextIp(ref op); return true; }
            if (budget <= 0) { c.Rip = c.CurrentIp(ref op); return true; } // resume after an interrupt check
        }
    }

    /// <summary>Runs a REP MOVS to its end or to the slice budget; false (nothing done) only to hand an overlapping copy to the element loop.</summary>
    private static bool RepMovsBulk(X86Cpu c, ref Op op)
    {
        int size = op.Size;
        long budget = RepSlice * 8L;
        while (true)
        {
            ulong cnt = c.R[1];
            if (cnt == 0) { c.Rip = c.NextIp(ref op); return true; }
            ulong src = SrcAddr(c, ref op), dst = DstAddr(c, ref op);
            ulong room = Math.Min(0x1000 - (src & 0xFFF), 0x1000 - (dst & 0xFFF)) / (ulong)size;
            byte* ps = room == 0 ? null : c.CachedReadPointer(src);
            byte* pd = ps == null ? null : c.CachedWritePointer(dst);
            ulong n;
            if (pd == null)
            {
                MovsOne(c, ref op);
                n = 1;
            }
            else
            {
                n = Math.Min(Math.Min(cnt, room), (ulong)budget);
                ulong bytes = n * (ulong)size;
                // Element-wise semantics differ from a block copy only when the ranges overlap (a forward copy onto
                // itself replicates a pattern): let the element loop do that one exactly.
                if (pd < ps + bytes && ps < pd + bytes)
                {
                    c.Rip = c.CurrentIp(ref op);
                    return false;
                }
                Buffer.MemoryCopy(ps, pd, bytes, bytes);
                c.R[6] += bytes;
                c.R[7] += bytes;
            }
            c.R[1] = cnt - n;
            budget -= pd == null ? 8 : (long)n;
            if (cnt == n) { c.Rip = c.NextIp(ref op); return true; }
            if (budget <= 0) { c.Rip = c.CurrentIp(ref op); return true; }
        }
    }

    private static void Fill(byte* p, int size, ulong value, int n)
    {
        switch (size)
        {
            case 8: new Span<ulong>(p, n).Fill(value); break;
            case 4: new Span<uint>(p, n).Fill((uint)value); break;
            case 2: new Span<ushort>(p, n).Fill((ushort)value); break;
            default: new Span<byte>(p, n).Fill((byte)value); break;
        }
    }

    public static void Lods(X86Cpu c, ref Op op) => RunString(c, ref op, &LodsOne);
    public static void Cmps(X86Cpu c, ref Op op) => RunString(c, ref op, &CmpsOne);
    public static void Scas(X86Cpu c, ref Op op) => RunString(c, ref op, &ScasOne);
    public static void Ins(X86Cpu c, ref Op op) => RunString(c, ref op, &InsOne);
    public static void Outs(X86Cpu c, ref Op op) => RunString(c, ref op, &OutsOne);
}

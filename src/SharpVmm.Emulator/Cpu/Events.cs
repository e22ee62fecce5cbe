using SharpVmm.Core.Cpu;

namespace SharpVmm.Emulator;

/// <summary>Exception and interrupt delivery (real-mode IVT, 32-bit and 64-bit IDT), double and triple faults, IRET.</summary>
internal sealed unsafe partial class X86Cpu
{
    public const int KindException = 0, KindSoftware = 1, KindExternal = 2, KindNmi = 3;

    private bool _shutdown;
    private bool _nmiMasked;

    private static bool IsContributory(int v) => v is 0 or 10 or 11 or 12 or 13;

    /// <summary>
    /// Delivers an event with RIP already at the return address. A fault raised while delivering becomes a double
    /// fault (or is delivered instead, per the SDM's table); a fault while delivering a double fault shuts down.
    /// </summary>
    public void RaiseEvent(int vector, bool hasError, uint error, int kind)
    {
        while (true)
        {
            try
            {
                DeliverCore(vector, hasError, error, kind);
                return;
            }
            catch (CpuFaultException f)
            {
                int v2 = f.Vector;
                bool e2 = f.HasErrorCode;
                uint c2 = f.ErrorCode;
                if (vector == 8 && kind == KindException) { _shutdown = true; return; }
                // INT n that faults while being delivered (gate not present, gate DPL below CPL...) is a fault of
                // the INT instruction: it reports the INT's own address, so a handler that repairs the gate can
                // return into it, and it never makes a double fault (nor do external interrupts: only a fault
                // while delivering an exception is counted against the SDM's double-fault table).
                if (kind == KindSoftware) Rip = _softwareIntRip;
                bool df = kind == KindException && ((IsContributory(vector) && IsContributory(v2)) || (vector == 14 && (v2 == 14 || IsContributory(v2))));
                if (df) { vector = 8; hasError = true; error = 0; }
                else { vector = v2; hasError = e2; error = c2; }
                kind = KindException;
            }
        }
    }

    private void DeliverCore(int vector, bool hasError, uint error, int kind)
    {
        uint ext = kind is KindExternal or KindNmi || (kind == KindException && vector != 3 && vector != 4) ? 1u : 0;
        if (kind == KindSoftware) ext = 0;
        ulong rflags = GetRflags();
        if (!ProtectedMode)
        {
            if ((ulong)vector * 4 + 3 > Idtr.Limit) throw Gp((uint)vector * 8 + 2 + ext);
            uint ivt = (uint)SysRead((Idtr.Base + (ulong)vector * 4) & 0xFFFF_FFFF, 4);
            Push(2, rflags);
            Push(2, Sreg[CS].Selector);
            Push(2, Rip);
            FlOther &= ~(IF | TF | 0x4_0000UL);
            LoadRealCs((ushort)(ivt >> 16));
            Rip = ivt & 0xFFFF;
            return;
        }
        if (LongModeActive) { DeliverLong(vector, hasError, error, kind, ext, rflags); return; }

        if ((ulong)vector * 8 + 7 > Idtr.Limit) throw Gp((uint)vector * 8 + 2 + ext);
        ulong gate = SysRead(Idtr.Base + (ulong)vector * 8, 8);
        uint hi = (uint)(gate >> 32);
        int type = (int)((hi >> 8) & 0x1F);
        int gdpl = (int)((hi >> 13) & 3);
        if (type is not (0x6 or 0x7 or 0xE or 0xF)) throw Gp((uint)vector * 8 + 2 + ext);
        if (kind == KindSoftware && gdpl < Cpl) throw Gp((uint)vector * 8 + 2);
        if ((hi & 0x8000) == 0) throw Np((uint)vector * 8 + 2 + ext);
        ushort sel = (ushort)(gate >> 16);
        ulong offset = (gate & 0xFFFF) | (hi & 0xFFFF_0000);
        int gsize = (type & 8) != 0 ? 4 : 2;
        if (gsize == 2) offset &= 0xFFFF;
        if ((sel & 0xFFFC) == 0) throw Gp(ext);
        ulong d = ReadDescriptor(sel);
        var cs = ParseDescriptor(sel, d);
        if (!cs.S || (cs.Type & 8) == 0 || cs.Dpl > Cpl) throw Gp((uint)(sel & 0xFFFC) + ext);
        if (!cs.Present) throw Np((uint)(sel & 0xFFFC) + ext);
        int newCpl = (cs.Type & 4) != 0 ? Cpl : cs.Dpl;
        ulong oldSs = Sreg[SS].Selector, oldEsp = R[4];
        ushort oldCs = Sreg[CS].Selector;
        if (newCpl < Cpl)
        {
            var tr = Sreg[TR];
            bool tss32 = (tr.Type & 8) != 0;
            ulong espOff = tss32 ? 4 + (ulong)newCpl * 8 : 2 + (ulong)newCpl * 4;
            ulong newEsp = SysRead(tr.Base + espOff, tss32 ? 4 : 2);
            ushort newSs = (ushort)SysRead(tr.Base + espOff + (tss32 ? 4UL : 2UL), 2);
            if ((newSs & 0xFFFC) == 0) throw Ts(ext);
            var ss = ParseDescriptor(newSs, SysRead(DescriptorAddress(newSs, (uint)(newSs & 0xFFFC) + ext), 8));
            if ((newSs & 3) != newCpl || ss.Dpl != newCpl || !ss.S || (ss.Type & 0xA) != 2) throw Ts((uint)(newSs & 0xFFFC) + ext);
            if (!ss.Present) throw Ss((uint)(newSs & 0xFFFC) + ext);
            SetCpl(newCpl);
            Sreg[SS] = ss;
            R[4] = newEsp;
            LoadCodeSegment(sel, cs, newCpl);
            Push(gsize, oldSs);
            Push(gsize, oldEsp);
        }
        else
        {
            LoadCodeSegment(sel, cs, newCpl);
        }
        Push(gsize, rflags);
        Push(gsize, oldCs);
        Push(gsize, Rip);
        if (hasError) Push(gsize, error);
        Rip = offset;
        FlOther &= ~(TF | 0x4000UL | 0x1_0000UL | 0x2_0000UL);
        if ((type & 1) == 0) FlOther &= ~IF;
    }

    private void DeliverLong(int vector, bool hasError, uint error, int kind, uint ext, ulong rflags)
    {
        if ((ulong)vector * 16 + 15 > Idtr.Limit) throw Gp((uint)vector * 8 + 2 + ext);
        ulong lo = SysRead(Idtr.Base + (ulong)vector * 16, 8);
        ulong hi = SysRead(Idtr.Base + (ulong)vector * 16 + 8, 8);
        int type = (int)((lo >> 40) & 0x1F);
        int gdpl = (int)((lo >> 45) & 3);
        if (type is not (0xE or 0xF)) throw Gp((uint)vector * 8 + 2 + ext);
        if (kind == KindSoftware && gdpl < Cpl) throw Gp((uint)vector * 8 + 2);
        if ((lo & (1UL << 47)) == 0) throw Np((uint)vector * 8 + 2 + ext);
        int ist = (int)((lo >> 32) & 7);
        ushort sel = (ushort)(lo >> 16);
        ulong target = (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF_0000) | (hi << 32);
        if ((sel & 0xFFFC) == 0) throw Gp(ext);
        var cs = ParseDescriptor(sel, ReadDescriptor(sel));
        if (!cs.S || (cs.Type & 8) == 0 || cs.Dpl > Cpl || !cs.L || cs.Db) throw Gp((uint)(sel & 0xFFFC) + ext);
        if (!cs.Present) throw Np((uint)(sel & 0xFFFC) + ext);
        int newCpl = (cs.Type & 4) != 0 ? Cpl : cs.Dpl;
        ulong rsp;
        var tr = Sreg[TR];
        if (ist != 0) rsp = SysRead(tr.Base + 0x24 + (ulong)(ist - 1) * 8, 8);
        else if (newCpl < Cpl) rsp = SysRead(tr.Base + 4 + (ulong)newCpl * 8, 8);
        else rsp = R[4];
        rsp &= ~0xFUL;
        ulong oldSs = Sreg[SS].Selector, oldRsp = R[4], oldCs = Sreg[CS].Selector, oldRip = Rip;
        int oldCpl = Cpl;
        // Write the frame as a supervisor before committing anything, so a fault here leaves the old state intact.
        ulong saveUser = UserBit;
        UserBit = 0;
        try
        {
            WriteMem(rsp - 8, 8, oldSs);
            WriteMem(rsp - 16, 8, oldRsp);
            WriteMem(rsp - 24, 8, rflags);
            WriteMem(rsp - 32, 8, oldCs);
            WriteMem(rsp - 40, 8, oldRip);
            if (hasError) WriteMem(rsp - 48, 8, error);
        }
        finally { UserBit = saveUser; }
        rsp -= hasError ? 48UL : 40UL;
        LoadCodeSegment(sel, cs, newCpl);
        if (newCpl != oldCpl)
        {
            Sreg[SS] = new SegmentRegister { Selector = (ushort)newCpl, Unusable = true, Dpl = (byte)newCpl, Db = true, S = true, Type = 3, Present = true };
            UpdateMode();
        }
        R[4] = rsp;
        Rip = target;
        FlOther &= ~(TF | 0x4000UL | 0x1_0000UL | 0x2_0000UL);
        if ((type & 1) == 0) FlOther &= ~IF;
    }

    /// <summary>IRET/IRETD/IRETQ with operand size <paramref name="size"/>.</summary>
    public void Iret(int size)
    {
        _nmiMasked = false;
        _attention = 1;
        if (!ProtectedMode)
        {
            ulong ip = Pop(size), cs = Pop(size), fl = Pop(size);
            LoadRealCs((ushort)cs);
            Rip = ip & (size == 2 ? 0xFFFFUL : 0xFFFF_FFFF);
            SetFlagsFromPop(fl, size, 0);
            return;
        }
        if ((FlOther & 0x4000) != 0 && !LongModeActive) throw Gp(0); // nested-task return: no task switching
        ulong rsp0 = R[4];
        ulong newIp = Pop(size), newCs = Pop(size), newFl = Pop(size);
        ushort sel = (ushort)newCs;
        if ((newFl & 0x2_0000) != 0 && !LongModeActive && Cpl == 0) { R[4] = rsp0; throw Gp(0); } // no virtual-8086 mode
        int rpl = sel & 3;
        bool popStack = Bitness == 64 || rpl > Cpl;
        ulong newSp = 0, newSs = 0;
        if (popStack) { newSp = Pop(size); newSs = Pop(size); }
        SegmentRegister csd;
        int newCpl;
        try { csd = CheckFarCodeTarget(sel, true, out newCpl); }
        catch (CpuFaultException) { R[4] = rsp0; throw; }
        if (LongModeActive && csd.L && !IsCanonical(newIp)) { R[4] = rsp0; throw Gp(0); }
        int oldCpl = Cpl;
        LoadCodeSegment(sel, csd, newCpl);
        Rip = Bitness == 64 ? newIp : newIp & (size == 2 ? 0xFFFFUL : 0xFFFF_FFFF);
        SetFlagsFromPop(newFl, size, oldCpl);
        if (popStack)
        {
            ushort ss = (ushort)newSs;
            if ((ss & 0xFFFC) == 0 && LongModeActive && newCpl != 3)
            {
                Sreg[SS] = new SegmentRegister { Selector = ss, Unusable = true, Dpl = (byte)newCpl, Db = true, S = true, Type = 3, Present = true };
                UpdateMode();
            }
            else LoadSegment(SS, ss);
            R[4] = size == 8 || Bitness == 64 ? newSp : (R[4] & ~StackMask) | (newSp & StackMask);
            if (newCpl > oldCpl) NullifyInaccessibleSegments();
        }
    }

    /// <summary>Applies a popped FLAGS image with the privilege rules of POPF/IRET.</summary>
    public void SetFlagsFromPop(ulong v, int size, int cplForRules)
    {
        ulong cur = GetRflags();
        ulong changeable = 0x24_4DD5UL; // CF PF AF ZF SF TF DF OF NT AC ID
        if (cplForRules == 0) changeable |= 0x3000 | IF;
        else if (cplForRules <= Iopl) changeable |= IF;
        if (size == 2) changeable &= 0xFFFF;
        ulong nf = (cur & ~changeable) | (v & changeable);
        nf &= ~0x1_0000UL; // RF
        bool ifBefore = (cur & IF) != 0;
        SetRflags(nf);
        if (!ifBefore && (nf & IF) != 0) _attention = 1;
    }
}

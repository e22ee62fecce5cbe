namespace SharpVmm.Emulator;

/// <summary>
/// RFLAGS.TF: while it is set at the start of an instruction, the CPU runs one instruction at a time and raises a
/// single-step #DB trap (DR6.BS) after each one that completes. TF only changes through instructions that end
/// their block (POPF, IRET, SYSRET...) or event delivery, so the block loop never needs to look at it.
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    public const ulong Dr6Bs = 0x4000;

    /// <summary>Set by SYSRET when it turned TF on: the trap is taken at the next boundary (see HandleAttention).</summary>
    private bool _pendingStepTrap;
    /// <summary>Set by SYSCALL/SYSRET run with TF on that leave it off: no trap after them.</summary>
    private bool _suppressStepTrap;

    /// <summary>
    /// SYSCALL and SYSRET trap on the TF they leave behind, not the one they started with: SYSCALL with TF masked by
    /// SFMASK raises no #DB in the kernel, and SYSRET restoring TF from R11 traps before the first user instruction.
    /// </summary>
    public void SingleStepFollowsNewTf(bool tfBefore)
    {
        bool tfAfter = (FlOther & TF) != 0;
        if (tfBefore) _suppressStepTrap = !tfAfter;
        else if (tfAfter) { _pendingStepTrap = true; _attention = 1; }
    }

    /// <summary>
    /// Runs one instruction: under TF (then a #DB trap follows it) or in an interrupt shadow (then attention is
    /// forced, so the boundary after it is checked for events).
    /// </summary>
    private void StepTraced()
    {
        bool traced = (FlOther & TF) != 0;
        if (_stepOne) { _stepOne = false; _attention = 1; }
        _suppressStepTrap = false;
        Op[]? ops = null;
        ulong rip = Rip;
        try
        {
            Block b = FindBlock();
            rip = Rip;
            R[BlockRipReg] = rip;
            CurBlock = b;
            ops = b.Ops;
            // The first instruction: its segment check ops (same Off) and then the instruction itself.
            int last = 0;
            while (last + 1 < ops.Length && ops[last + 1].Off == ops[0].Off) last++;
            for (int i = 0; i < last; i++)
            {
                ref Op o = ref ops[i];
                o.H(this, ref o);
            }
            ref Op op = ref ops[last];
            if ((op.Flags & OpFlags.Fused) != 0)
            {
                // A CMP/TEST fused with its Jcc: trap after the compare; the Jcc is the next step.
                Handlers.FusedCompareOnly(this, ref op);
                Rip = (rip + op.Imm2) & IpMask;
            }
            else
            {
                op.H(this, ref op);
                if (!(last == ops.Length - 1 && b.EndsWithBranch)) Rip = (rip + op.NextOff) & IpMask;
            }
            Retired++;
            // MOV SS / POP SS hold the trap off until after the next instruction (it is taken there, as TF is
            // still set); an instruction that halted traps when the CPU wakes, which the event then reports.
            if (!traced || b.StartsWithSsLoad || Halted || _suppressStepTrap) return;
            Dr[6] |= Dr6Bs;
            RaiseEvent(1, false, 0, KindException);
        }
        catch (CpuFaultException f)
        {
            // The instruction did not complete (or was INT n): its own event is delivered, no single-step trap.
            if (ops is null) { RaiseEvent(f.Vector, f.HasErrorCode, f.ErrorCode, KindException); return; }
            ref Op op = ref ops[0];
            if (f.Software)
            {
                Rip = (rip + op.NextOff) & IpMask;
                RaiseEvent(f.Vector, false, 0, KindSoftware);
            }
            else
            {
                Rip = (rip + op.Off) & IpMask;
                int vector = f.Vector;
                if (f.NonCanonical && IsStackReference(ref op)) vector = 12;
                RaiseEvent(vector, f.HasErrorCode, f.ErrorCode, KindException);
            }
        }
        catch (BlockAbortException)
        {
        }
    }
}

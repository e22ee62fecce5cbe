using Iced.Intel;

namespace SharpVmm.Emulator;

/// <summary>A run of decoded instructions inside one guest-physical page, ending at a control transfer or the page end (or one instruction that straddles two pages).</summary>
internal sealed unsafe class Block
{
    public Block(Op[] ops, Instruction[] instrs, ulong key, ulong physPage, bool endsWithBranch, ushort endOff, bool startsWithSsLoad = false, int instrCount = -1)
    {
        InstrCount = instrCount < 0 ? ops.Length : instrCount;
        StartsWithSsLoad = startsWithSsLoad;
        Ops = ops;
        Instrs = instrs;
        Key = key;
        PhysPage = physPage;
        EndsWithBranch = endsWithBranch;
        EndOff = endOff;
    }

    public readonly Op[] Ops;
    /// <summary>Guest instructions in the block (ops may be more: segment checks, wide displacements; or fewer: fused pairs).</summary>
    public readonly int InstrCount;
    /// <summary>The Iced form of the instructions whose slow handlers (system, x87) read it, indexed by their op's Imm2; usually empty.</summary>
    public readonly Instruction[] Instrs;
    public readonly ulong Key;
    public readonly ulong PhysPage;
    /// <summary>The last op sets RIP itself; otherwise RIP = block start + <see cref="EndOff"/> after the last op.</summary>
    public readonly bool EndsWithBranch;
    public readonly ushort EndOff;
    /// <summary>The first instruction is MOV SS / POP SS (its single-step trap is held off by one instruction).</summary>
    public readonly bool StartsWithSsLoad;
    public volatile bool Valid = true;

    /// <summary>Host code for a prefix of the ops (null: none yet; <see cref="Jit.Translation.None"/>: not translatable). Cleared, and the code killed, by <see cref="Invalidate"/>.</summary>
    public volatile Jit.Translation? Jit;

    /// <summary>Executions counted towards translation (vCPU threads race on it; an approximate count is enough).</summary>
    public int Heat;

    /// <summary>
    /// For a one-instruction block whose bytes run into the next page: that page's guest-physical address (its
    /// writes invalidate the block too, and a lookup checks the page is still mapped there); otherwise
    /// <see cref="NoPage"/>.
    /// </summary>
    public ulong PhysPage2 = NoPage;

    public const ulong NoPage = ulong.MaxValue;

    /// <summary>
    /// What the block costs in the cache, for its budget: the op and instruction arrays plus the block object,
    /// the arrays' headers and its dictionary and page-list slots.
    /// </summary>
    public long CostBytes => (long)Ops.Length * sizeof(Op) + (long)Instrs.Length * sizeof(Instruction) + 160;

    /// <summary>
    /// Marks the block dead and makes every op stop a vCPU that is still inside it, so a guest that rewrote the
    /// code it is running resumes at the next instruction with freshly decoded bytes.
    /// </summary>
    public void Invalidate()
    {
        Valid = false;
        // Full fences on both sides (see JitEngine.Translate): either the publisher sees Valid cleared or we see its code and kill it.
        Interlocked.MemoryBarrier();
        Interlocked.Exchange(ref Jit, null)?.Kill();
        for (int i = 0; i < Ops.Length; i++) Ops[i].H = &Handlers.AbortBlock;
    }
}

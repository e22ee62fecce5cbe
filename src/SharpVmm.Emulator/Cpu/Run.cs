using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVmm.Core;
using SharpVmm.Core.Cpu;

namespace SharpVmm.Emulator;

internal struct JumpCacheEntry
{
    public ulong Lin;
    /// <summary>Decode mode and user bit, plus the flush generation the entry was made in.</summary>
    public ulong Mode;
    public Block? Block;
}

/// <summary>The interpreter loop: find the block at RIP (jump cache, then the shared block cache, then decode), run it, check events at block boundaries.</summary>
internal sealed unsafe partial class X86Cpu
{
    private const int JumpCacheSize = 16384;
    private readonly JumpCacheEntry[] _jc = new JumpCacheEntry[JumpCacheSize];
    private readonly Translator _translator = new();
    private readonly AutoResetEvent _wakeEvent = new(false);
    private readonly BlockAbortException _blockAbort = new();
    /// <summary>Set by any thread when the vCPU must look at events; in native memory (R[JitAttnSlot]) so translated code checks it at every block entry.</summary>
    private ref int _attention => ref *_attnPtr;
    private int* _attnPtr;
    private static readonly int* AttentionSink = (int*)NativeMemory.AllocZeroed(sizeof(int));
    private const int PollInterval = 4096;
    private int _pollCountdown = PollInterval;
    private int _kick;
    private bool _waitForSipi;
    private bool _shadow;
    /// <summary>Run the next instruction alone and look for events after it (the instruction in an interrupt shadow).</summary>
    private bool _stepOne;
    public bool Halted;
    public Block? CurBlock;

    /// <summary>Guest instructions retired (approximate at faults); for benchmarks.</summary>
    public ulong Retired;

    public BlockAbortException BlockAbort => _blockAbort;

    /// <summary>Bumping the generation (kept in the upper bits of every entry's mode key) empties the jump cache in O(1).</summary>
    private void FlushJumpCache()
    {
        _jcGeneration += 1UL << 16;
        _jcGlobalGeneration = _jcGeneration;
    }

    /// <summary>
    /// A CR3 write with CR4.PGE: entries made from a global translation stay, as global TLB entries do (the kernel's
    /// text is global, and a boot writes CR3 some 18 k times: emptying everything cost 1.6 M page walks and lookups).
    /// </summary>
    private void FlushNonGlobalJumpCache() => _jcGeneration += 1UL << 16;

    /// <summary>Marks a jump-cache entry made from a global translation (bit 15 is above every mode-key bit).</summary>
    private const ulong GlobalEntry = 1UL << 15;

    /// <summary>The generation global entries carry: moved by full flushes and INVLPG, not by CR3 writes.</summary>
    private ulong _jcGlobalGeneration;

    private ulong _jcGeneration;

    /// <summary>
    /// Called by the block cache (on whichever thread flushed it) after marking every block invalid: drops the
    /// jump cache's references so the blocks can be collected. A racing lookup on this vCPU's thread sees either
    /// its old, invalid block or null: a miss either way.
    /// </summary>
    public void DropJumpCache()
    {
        var jc = _jc;
        for (int i = 0; i < jc.Length; i++) jc[i].Block = null;
        MarkNativeJumpCacheStale();
        RequestAttention();
    }

    public void Kick()
    {
        Volatile.Write(ref _kick, 1);
        _attention = 1;
        try { _wakeEvent.Set(); } catch (ObjectDisposedException) { }
    }

    private void OnWake()
    {
        _attention = 1;
        try { _wakeEvent.Set(); } catch (ObjectDisposedException) { }
    }

    /// <summary>An interrupt-shadow instruction (STI, MOV SS, POP SS) ran: hold interrupts for one more boundary.</summary>
    public void SetInterruptShadow()
    {
        _shadow = true;
        _attention = 1;
    }

    public void RequestAttention() => _attention = 1;

    public VcpuExit Run()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            while (true)
            {
                // Attention is also forced every few thousand blocks so state polled rather than signalled
                // (dirty logging switched on by migration) is noticed promptly.
                if (_pollCountdown <= 0) { _pollCountdown = PollInterval; _attention = 1; }
                if (_attention != 0 && HandleAttention(out var exit)) return exit;
                if (_shutdown) { _shutdown = false; return VcpuExit.Shutdown; }
                if (_waitForSipi)
                {
                    if (WaitForSipi(out var e)) return e;
                    continue;
                }
                if (Halted)
                {
                    if (WaitWhileHalted(out var e)) return e;
                    continue;
                }
                if ((FlOther & TF) != 0 || _stepOne) StepTraced();
                else Step();
            }
        }
        catch (EmulatorException ex)
        {
            return new VcpuExit(VcpuExitReason.InternalError, 0, ex.Message);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException and not ObjectDisposedException)
        {
            // An emulator bug must stop this VM with a diagnosis, not take the host process down.
            return new VcpuExit(VcpuExitReason.InternalError, 0,
                $"vCPU {Index}: emulator failure at RIP 0x{Rip:x} (CS 0x{Sreg[CS].Selector:x}): {ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>
    /// Runs blocks back to back until something needs the outer loop (attention: an event, a system instruction,
    /// a kick, the poll countdown). One try region covers many blocks, so the common path never re-enters it.
    /// </summary>
    private void Step()
    {
        Op[]? ops = null;
        int i = 0;
        ulong rip = 0;
        try
        {
            while (true)
            {
                Block b = FindBlock();
                rip = Rip;
                R[BlockRipReg] = rip;
                CurBlock = b;
                ops = b.Ops;
                i = 0;
                if (_jit is not null && b.PhysPage != Block.NoPage)
                {
                    i = RunTranslated(ref b);
                    if (i < 0)
                    {
                        // Translated code ran up to a block boundary (maybe through many chained blocks): RIP is set.
                        ops = null;
                        if (_attention != 0 || --_pollCountdown <= 0) return;
                        continue;
                    }
                    if (b != CurBlock)
                    {
                        // It stopped inside a block it had chained into: the interpreter goes on there.
                        rip = R[BlockRipReg];
                        CurBlock = b;
                        ops = b.Ops;
                    }
                }
                for (; i < ops.Length; i++)
                {
                    ref Op op = ref ops[i];
                    op.H(this, ref op);
                }
                if (!b.EndsWithBranch) Rip = (rip + b.EndOff) & IpMask;
                Retired += (ulong)b.InstrCount;
                ops = null;
                if (_attention != 0 || --_pollCountdown <= 0) return;
            }
        }
        catch (CpuFaultException f)
        {
            if (ops is null)
            {
                RaiseEvent(f.Vector, f.HasErrorCode, f.ErrorCode, KindException); // instruction fetch fault
                return;
            }
            Retired += (ulong)i;
            ref Op op = ref ops[i];
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
            Retired += (ulong)i;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Block FindBlock()
    {
        ulong lin = (R[SegBaseSlot + CS] + Rip) & LinMask;
        ulong mode = _modeKey | _jcGeneration;
        ref JumpCacheEntry e = ref _jc[(int)((lin ^ (lin >> 12)) & (JumpCacheSize - 1))];
        var blk = e.Block;
        if (e.Lin == lin && (e.Mode == mode || e.Mode == (_modeKey | _jcGlobalGeneration | GlobalEntry)) && blk is not null && blk.Valid) return blk;
        return FindBlockSlow(lin, mode, ref e);
    }

    private Block FindBlockSlow(ulong lin, ulong mode, ref JumpCacheEntry e)
    {
        ulong pa = Translate(lin, AccFetch, UserBit != 0);
        ulong key = pa | ((ulong)(uint)Bitness << 56) | (SegCheckMask << 48);
        var b = _cache.Lookup(key);
        if (b is not null && b.PhysPage2 != Block.NoPage && SecondCodePage(lin) != b.PhysPage2)
            return DecodeUncached(lin); // the next linear page maps elsewhere now: rare, so not cached
        if (b is null)
        {
            var r = FindRam(pa);
            if (r is null || !r.Contains(pa & ~0xFFFUL, 0x1000) || (_apic is not null && IsApicPage(pa))) return DecodeUncached(lin);
            byte* host = r.Host + (pa - r.GuestBase);
            int avail = (int)(0x1000 - (pa & 0xFFF));
            b = _translator.DecodeBlock(host, avail, Bitness, key, pa & ~0xFFFUL, segChecks: SegCheckMask)
                ?? DecodeStraddling(lin, host, avail, key, pa);
            if (b is null) return DecodeUncached(lin);
            b = _cache.Add(b);
        }
        CheckWriteTlbValidity();
        e.Lin = lin;
        // A global translation (and a block that does not run into a second page, whose mapping is checked only
        // here) may outlive CR3 writes; FindBlockSlow's walk above set WalkGlobal.
        e.Mode = _mmu.WalkGlobal && b.PhysPage2 == Block.NoPage ? _modeKey | _jcGlobalGeneration | GlobalEntry : mode;
        e.Block = b;
        return b;
    }

    /// <summary>Physical page the page after <paramref name="lin"/>'s maps to, for code fetch (may page-fault, as the fetch would).</summary>
    private ulong SecondCodePage(ulong lin) => Translate(((lin | 0xFFF) + 1) & LinMask, AccFetch, UserBit != 0) & ~0xFFFUL;

    /// <summary>
    /// The first instruction at <paramref name="lin"/> runs into the next page (the decoder ran out of bytes, so it
    /// really extends there and fetching that page is architectural). When both pages are ordinary RAM it becomes
    /// a cached one-instruction block registered under both pages; kernels have hot loops with such instructions.
    /// </summary>
    private Block? DecodeStraddling(ulong lin, byte* host, int avail, ulong key, ulong pa)
    {
        ulong pa2 = SecondCodePage(lin);
        var r2 = FindRam(pa2);
        if (r2 is null || !r2.Contains(pa2, 0x1000) || (_apic is not null && IsApicPage(pa2))) return null;
        byte* buf = stackalloc byte[16];
        int first = Math.Min(avail, 15);
        for (int i = 0; i < first; i++) buf[i] = host[i];
        byte* host2 = r2.Host + (pa2 - r2.GuestBase);
        for (int i = first; i < 15; i++) buf[i] = host2[i - first];
        var b = _translator.DecodeBlock(buf, 15, Bitness, key, pa & ~0xFFFUL, 1, SegCheckMask);
        if (b is null) return null;
        b.PhysPage2 = pa2;
        return b;
    }

    /// <summary>
    /// One instruction decoded for this execution only, never cached: one that crosses into a next page that is not
    /// plain RAM (or no longer maps where its cached copy was made), or code outside RAM (fetched through the bus like any other physical read; unbacked addresses read as all ones).
    /// Bytes of the next page are fetched only when the instruction really extends there.
    /// </summary>
    private Block DecodeUncached(ulong lin)
    {
        byte* buf = stackalloc byte[16];
        int first = (int)Math.Min(15UL, 0x1000 - (lin & 0xFFF));
        ulong pa = Translate(lin, AccFetch, UserBit != 0);
        for (int i = 0; i < first; i++) buf[i] = (byte)PhysRead(pa + (ulong)i, 1);
        var b = _translator.DecodeBlock(buf, first, Bitness, 0, ulong.MaxValue, 1, SegCheckMask);
        if (b is not null) return b;
        ulong pa2 = Translate((lin + (ulong)first) & LinMask, AccFetch, UserBit != 0);
        for (int i = first; i < 15; i++) buf[i] = (byte)PhysRead(pa2 + (ulong)(i - first), 1);
        return _translator.DecodeBlock(buf, 15, Bitness, 0, ulong.MaxValue, 1, SegCheckMask)
               ?? throw new EmulatorException($"vCPU {Index}: cannot decode the instruction at RIP 0x{Rip:x}");
    }

    /// <summary>Kicks, INIT/SIPI, NMI and external interrupts. Returns true with an exit to leave Run.</summary>
    private bool HandleAttention(out VcpuExit exit)
    {
        _attention = 0;
        exit = default;
        // Before honouring a kick: a machine that enables dirty logging and then kicks its vCPUs is guaranteed that
        // every later guest write goes through the logging slow path.
        CheckWriteTlbValidity();
        if (Interlocked.Exchange(ref _kick, 0) != 0) { exit = VcpuExit.Kicked; return true; }
        if (_pendingStepTrap)
        {
            // SYSRET set TF: the single-step trap comes at this boundary, before the first instruction it returned to.
            _pendingStepTrap = false;
            Dr[6] |= Dr6Bs;
            RaiseEvent(1, false, 0, KindException);
        }
        var apic = _apic;
        if (apic is null) { _shadow = false; return false; }
        if (apic.TryTakeInit())
        {
            EnterWaitForSipi();
            return false;
        }
        if (_waitForSipi) return false;
        if (!_nmiMasked && apic.TryTakeNmi())
        {
            Halted = false;
            _nmiMasked = true;
            RaiseEvent(2, false, 0, KindNmi);
            _attention = 1;
            return false;
        }
        if (_shadow)
        {
            // Exactly one instruction runs in the shadow; the boundary after it is checked again, so an interrupt
            // that became deliverable at the STI is taken there even if that instruction's block goes on to CLI.
            _shadow = false;
            _stepOne = true;
            return false;
        }
        if (InterruptsEnabled && apic.HasInterrupt)
        {
            int v = apic.Acknowledge();
            if (v >= 0)
            {
                Halted = false;
                RaiseEvent(v, false, 0, KindExternal);
            }
            _attention = 1; // another may be pending behind it
        }
        return false;
    }

    private bool WaitWhileHalted(out VcpuExit exit)
    {
        var apic = _apic;
        if (apic is null || !InterruptsEnabled)
        {
            // Nothing can wake this CPU but the machine: hand HLT to it; the next Run continues after the HLT.
            Halted = false;
            exit = VcpuExit.Halt;
            return true;
        }
        while (true)
        {
            if (Volatile.Read(ref _kick) != 0) { _attention = 1; exit = default; return false; }
            if (apic.HasInterrupt && InterruptsEnabled) { _attention = 1; exit = default; return false; }
            if (apic.TryTakeInit()) { EnterWaitForSipi(); exit = default; return false; }
            if (!_nmiMasked && apic.TryTakeNmi())
            {
                Halted = false;
                _nmiMasked = true;
                RaiseEvent(2, false, 0, KindNmi);
                exit = default;
                return false;
            }
            _wakeEvent.WaitOne(100);
        }
    }

    private bool WaitForSipi(out VcpuExit exit)
    {
        var apic = _apic!;
        while (true)
        {
            if (Interlocked.Exchange(ref _kick, 0) != 0) { exit = VcpuExit.Kicked; return true; }
            apic.TryTakeInit();
            if (apic.TryTakeStartup(out byte vector))
            {
                _waitForSipi = false;
                Halted = false;
                LoadRealCs((ushort)(vector << 8));
                Rip = 0;
                exit = default;
                return false;
            }
            _wakeEvent.WaitOne(100);
        }
    }

    /// <summary>INIT: the CPU resets (keeping the APIC base and a few MSRs) and waits for a startup IPI.</summary>
    private void EnterWaitForSipi()
    {
        ulong apicBase = ApicBase;
        uint pkru = Pkru; // INIT leaves PKRU alone (SDM vol. 3, table 10-1)
        ResetToPowerOn();
        ApicBase = apicBase;
        Pkru = pkru;
        _waitForSipi = true;
    }
}

/// <summary>The emulator cannot go on (code outside RAM, an undecodable state): becomes an InternalError exit.</summary>
public sealed class EmulatorException : VmmException
{
    public EmulatorException(string message) : base(message) { }
    public EmulatorException(string message, Exception inner) : base(message, inner) { }
}

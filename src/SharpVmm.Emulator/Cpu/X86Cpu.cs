using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;
using SharpVmm.Core.Time;
using SharpVmm.Memory;

namespace SharpVmm.Emulator;

/// <summary>
/// One emulated x86-64 CPU: architectural state plus the interpreter loop. Split over several files by concern
/// (registers and flags here, MMU, events, segments, system registers, run loop).
/// </summary>
internal sealed unsafe partial class X86Cpu : IVcpu
{
    // Register file slots: 0..15 GPRs, a constant zero (absent base/index), the current block's RIP (RIP-relative
    // operands are decoded relative to the block start), a displacement too wide for Op.Disp (set by a WideDisp op
    // just before its user), then the effective segment bases.
    public const int ZeroReg = 16, BlockRipReg = 17, WideDispReg = 18, SegBaseSlot = 24, RegSlots = 40;
    /// <summary>Slots the translated code exchanges with the vCPU loop (Jit/CpuJit.cs): the next RIP, the arithmetic flags.</summary>
    public const int JitRipSlot = 32, JitFlagsSlot = 33;
    /// <summary>Copies the translated code's TLB probe reads: the linear-address mask, the user bit, the TLB's address.</summary>
    public const int JitLinMaskSlot = 34, JitUserBitSlot = 35, JitTlbSlot = 36;
    /// <summary>Set at each entry into translated code: the jump-cache mode key; instructions of the blocks completed.</summary>
    public const int JitModeSlot = 37, JitRetiredSlot = 38;
    /// <summary>
    /// Past <see cref="RegSlots"/> (so a reset keeps them): the attention word generated code checks at every block
    /// entry (an int), the chain budget (an int), the native jump cache's address.
    /// </summary>
    public const int JitAttnSlot = 40, JitBudgetSlot = 41, JitJumpCacheSlot = 42;
    /// <summary>RFLAGS but the arithmetic flags, set at each entry (only the interpreter changes them): what PUSHF reads.</summary>
    public const int JitOtherFlagsSlot = 43, AllSlots = 44;
    public const int ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, TR = 6, LDTR = 7;

    public readonly ulong* R;
    public ulong Rip;
    public readonly SegmentRegister[] Sreg = new SegmentRegister[8];
    public DescriptorTable Gdtr, Idtr;
    public ulong Cr0 = 0x6000_0010, Cr3, Cr4, Cr8, Efer, ApicBase = 0xFEE0_0900;
    public readonly ulong[] Dr = new ulong[8];

    public int Cpl;
    /// <summary>1 when CPL is 3: part of every TLB tag, so user and supervisor translations never mix.</summary>
    public ulong UserBit;
    public int Bitness = 16;
    public ulong LinMask = 0xFFFF_FFFF, StackMask = 0xFFFF, IpMask = 0xFFFF;

    private readonly GuestMemory _memory;
    private readonly MemoryRegion[] _regions;
    private readonly IIoBus _bus;
    private readonly BlockCache _cache;
    private readonly GuestClock _clock;
    private readonly ILocalApic? _apic;
    private readonly ILogger? _log;
    private readonly CpuFaultException _fault = new();
    private bool _disposed;

    public X86Cpu(int index, GuestMemory memory, IIoBus bus, BlockCache cache, GuestClock clock, ILocalApic? apic, ILogger? log, Jit.JitEngine? jit = null)
    {
        Index = index;
        _memory = memory;
        _regions = [.. memory.Regions];
        _bus = bus;
        _cache = cache;
        _clock = clock;
        _apic = apic;
        _log = log;
        R = (ulong*)NativeMemory.AllocZeroed(AllSlots * sizeof(ulong));
        _attnPtr = (int*)(R + JitAttnSlot);
        _attention = 1;
        Xmm = (ulong*)NativeMemory.AllocZeroed(16 * 16 + 16);
        _mmu = new Mmu(memory, _fault, cache, PhysReadIo);
        _tlb = _mmu.Tlb;
        ResetToPowerOn();
        if (apic is not null)
        {
            apic.Wake = OnWake;
            // Application processors wait for INIT/SIPI, as on a real board.
            if (index > 0) _waitForSipi = true;
        }
        _codeGenSeen = cache.CodeGeneration;
        cache.Register(this);
        if (jit is not null && jit.Available && jit.Mode != JitMode.Off)
        {
            _jit = jit;
            _jitThreshold = jit.Threshold;
            _compiler = new Jit.BlockCompiler();
            _njc = (NativeJumpEntry*)NativeMemory.AllocZeroed((nuint)(NativeJumpCacheSize * sizeof(NativeJumpEntry)));
            R[JitJumpCacheSlot] = (ulong)_njc;
            jit.Register(this);
        }
    }

    public int Index { get; }

    private void ResetToPowerOn()
    {
        for (int i = 0; i < RegSlots; i++) R[i] = 0;
        R[(int)Gpr.Rdx] = 0x600;
        Xcr0 = 1;
        Pkru = 0;
        Rip = 0xFFF0;
        SetRflags(0x2);
        for (int i = 0; i < 6; i++) Sreg[i] = SegmentRegister.RealMode(0);
        Sreg[CS] = SegmentRegister.RealMode(0xF000, 0xB);
        Sreg[CS].Base = 0xFFFF_0000;
        Sreg[TR] = new SegmentRegister { Type = 0xB, Present = true, Limit = 0xFFFF };
        Sreg[LDTR] = new SegmentRegister { Type = 0x2, Present = true, Limit = 0xFFFF };
        Gdtr = new DescriptorTable { Limit = 0xFFFF };
        Idtr = new DescriptorTable { Limit = 0xFFFF };
        Cr0 = 0x6000_0010; Cr2 = Cr3 = Cr4 = Cr8 = Efer = 0;
        ApicBase = 0xFEE0_0000 | 0x800 | (Index == 0 ? 0x100UL : 0);
        Array.Clear(Dr); Dr[6] = 0xFFFF0FF0; Dr[7] = 0x400;
        ResetFpu();
        _msrs.Clear();
        Pat = 0x0007_0406_0007_0406;
        _nmiMasked = false; _shadow = false; Halted = false;
        UpdateMode();
        FlushTlb();
    }

    // ---------------------------------------------------------------- registers

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong GetReg(int r, int size)
    {
        switch (size)
        {
            case 8: return R[r];
            case 4: return (uint)R[r];
            case 2: return (ushort)R[r];
            default: return r < 16 ? (byte)R[r] : (byte)(R[r - 20] >> 8);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetReg(int r, int size, ulong v)
    {
        switch (size)
        {
            case 8: R[r] = v; break;
            case 4: R[r] = (uint)v; break;
            case 2: R[r] = (R[r] & ~0xFFFFUL) | (ushort)v; break;
            default:
                if (r < 16) R[r] = (R[r] & ~0xFFUL) | (byte)v;
                else R[r - 20] = (R[r - 20] & ~0xFF00UL) | ((ulong)(byte)v << 8);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SizeMask(int size) => size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long SignExtend(ulong v, int size) => size switch
    {
        1 => (sbyte)v,
        2 => (short)v,
        4 => (int)v,
        _ => (long)v,
    };

    // ---------------------------------------------------------------- lazy flags
    // Arithmetic flags are kept as (kind, operands, result) and computed only when read: most are overwritten
    // before anything looks at them.

    public const ulong CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, TF = 0x100, IF = 0x200, DF = 0x400, OF = 0x800, AC = 1UL << 18;
    public const ulong ArithMask = CF | PF | AF | ZF | SF | OF;
    public const int FkEager = 0, FkAdd = 1, FkAdc = 2, FkSub = 3, FkSbb = 4, FkLogic = 5, FkInc = 6, FkDec = 7, FkShl = 8, FkShr = 9, FkSar = 10;

    public int FlKind;
    public int FlSize = 4;
    public ulong FlA, FlB, FlRes, FlEager;
    /// <summary>Carry into ADC/SBB, or the CF that INC/DEC preserve.</summary>
    public ulong FlCin;
    /// <summary>RFLAGS bits other than the six arithmetic ones (bit 1 always set).</summary>
    public ulong FlOther = 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetLazy(int kind, ulong a, ulong b, ulong res, int size)
    {
        FlKind = kind; FlA = a; FlB = b; FlRes = res; FlSize = size;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetLogic(ulong res, int size)
    {
        FlKind = FkLogic; FlRes = res; FlSize = size;
    }

    public void SetEager(ulong arith)
    {
        FlKind = FkEager; FlEager = arith & ArithMask;
    }

    /// <summary>CF alone (ADC/SBB/INC/DEC need it): far cheaper than materializing every flag.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool GetCf()
    {
        int sh = 64 - FlSize * 8;
        switch (FlKind)
        {
            case FkEager: return (FlEager & CF) != 0;
            case FkAdd: return (FlRes << sh) < (FlA << sh);
            case FkSub: return (FlA << sh) < (FlB << sh);
            case FkLogic: return false;
            case FkInc:
            case FkDec: return FlCin != 0;
            default: return (ComputeArith() & CF) != 0;
        }
    }

    public ulong ComputeArith()
    {
        int size = FlSize;
        ulong m = SizeMask(size);
        ulong res = FlRes & m, a = FlA & m, b = FlB & m;
        int sh = size * 8 - 1;
        ulong f = 0;
        switch (FlKind)
        {
            case FkEager: return FlEager;
            case FkAdd:
                if (res < a) f |= CF;
                f |= (((a ^ res) & (b ^ res)) >> sh & 1) != 0 ? OF : 0;
                f |= (a ^ b ^ res) & AF;
                break;
            case FkAdc:
                if (FlCin != 0 ? res <= a : res < a) f |= CF;
                f |= (((a ^ res) & (b ^ res)) >> sh & 1) != 0 ? OF : 0;
                f |= (a ^ b ^ res) & AF;
                break;
            case FkSub:
                if (a < b) f |= CF;
                f |= (((a ^ b) & (a ^ res)) >> sh & 1) != 0 ? OF : 0;
                f |= (a ^ b ^ res) & AF;
                break;
            case FkSbb:
                if (FlCin != 0 ? a <= b : a < b) f |= CF;
                f |= (((a ^ b) & (a ^ res)) >> sh & 1) != 0 ? OF : 0;
                f |= (a ^ b ^ res) & AF;
                break;
            case FkLogic:
                break;
            case FkInc:
                f |= FlCin & CF;
                if (res == 1UL << sh) f |= OF;
                f |= (a ^ 1 ^ res) & AF;
                break;
            case FkDec:
                f |= FlCin & CF;
                if (res == (1UL << sh) - 1) f |= OF;
                f |= (a ^ 1 ^ res) & AF;
                break;
            case FkShl:
            {
                // FlB = count (1..63, and <= operand bits for 8/16-bit operands).
                int n = (int)FlB;
                bool cf = n <= size * 8 && ((a >> (size * 8 - n)) & 1) != 0;
                if (cf) f |= CF;
                if (((res >> sh & 1) != 0) != cf) f |= OF;
                break;
            }
            case FkShr:
            {
                int n = (int)FlB;
                if (n <= size * 8 && ((a >> (n - 1)) & 1) != 0) f |= CF;
                if (n == 1 && (a >> sh & 1) != 0) f |= OF;
                break;
            }
            case FkSar:
            {
                int n = (int)FlB;
                long sa = SignExtend(a, size);
                if (((sa >> Math.Min(n - 1, 63)) & 1) != 0) f |= CF;
                break;
            }
        }
        if (res == 0) f |= ZF;
        if ((res >> sh & 1) != 0) f |= SF;
        if ((System.Numerics.BitOperations.PopCount(res & 0xFF) & 1) == 0) f |= PF;
        return f;
    }

    public ulong GetRflags() => FlOther | ComputeArith();

    public void SetRflags(ulong v)
    {
        FlOther = (v & ~ArithMask & 0x3F7FD5UL) | 2;
        FlKind = FkEager;
        FlEager = v & ArithMask;
        if (_mmu.HasSmapWindowEntries) CloseSmapWindow();
    }

    /// <summary>Evaluates an x86 condition code (0 = O ... 15 = G) against the lazy flags.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Cond(int cc)
    {
        if (FlKind == FkSub)
        {
            int sh = 64 - FlSize * 8;
            switch (cc)
            {
                case 2: return (FlA << sh) < (FlB << sh);
                case 3: return (FlA << sh) >= (FlB << sh);
                case 4: return (FlRes << sh) == 0;
                case 5: return (FlRes << sh) != 0;
                case 6: return (FlA << sh) <= (FlB << sh);
                case 7: return (FlA << sh) > (FlB << sh);
                case 12: return (long)(FlA << sh) < (long)(FlB << sh);
                case 13: return (long)(FlA << sh) >= (long)(FlB << sh);
                case 14: return (long)(FlA << sh) <= (long)(FlB << sh);
                case 15: return (long)(FlA << sh) > (long)(FlB << sh);
            }
        }
        else if (FlKind != FkEager)
        {
            int sh = 64 - FlSize * 8;
            switch (cc)
            {
                case 4: return (FlRes << sh) == 0;
                case 5: return (FlRes << sh) != 0;
                case 8: return (long)(FlRes << sh) < 0;
                case 9: return (long)(FlRes << sh) >= 0;
            }
        }
        return CondSlow(cc);
    }

    private bool CondSlow(int cc)
    {
        ulong f = ComputeArith();
        bool r = (cc >> 1) switch
        {
            0 => (f & OF) != 0,
            1 => (f & CF) != 0,
            2 => (f & ZF) != 0,
            3 => (f & (CF | ZF)) != 0,
            4 => (f & SF) != 0,
            5 => (f & PF) != 0,
            6 => ((f & SF) != 0) != ((f & OF) != 0),
            _ => (f & ZF) != 0 || ((f & SF) != 0) != ((f & OF) != 0),
        };
        return (cc & 1) != 0 ? !r : r;
    }

    public bool InterruptsEnabled => (FlOther & IF) != 0;
    public bool DirectionDown => (FlOther & DF) != 0;

    // ---------------------------------------------------------------- faults

    [MethodImpl(MethodImplOptions.NoInlining)]
    public CpuFaultException Fault(int vector, uint error = 0, bool hasError = false)
    {
        return _fault.Set(vector, error, hasError);
    }

    /// <summary>
    /// A non-canonical linear address in 64-bit mode: #GP(0), which the dispatcher turns into #SS(0) when the
    /// faulting instruction's reference goes through SS (see <see cref="IsStackReference"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public CpuFaultException NonCanonicalFault()
    {
        var f = Fault(13, 0, true);
        f.NonCanonical = true;
        return f;
    }

    /// <summary>Whether a non-canonical fault of this op came from a stack reference (#SS) rather than a data one (#GP).</summary>
    private bool IsStackReference(ref Op op)
    {
        if ((op.Flags & OpFlags.Mem) != 0)
        {
            if (op.Seg == SS) return true;
            if (!IsCanonical(Ea(ref op))) return false;
        }
        return (op.Flags & OpFlags.Stack) != 0;
    }

    public CpuFaultException Ud() => Fault(6);
    public CpuFaultException Gp(uint error = 0) => Fault(13, error, true);
    public CpuFaultException Ss(uint error = 0) => Fault(12, error, true);
    public CpuFaultException Np(uint error) => Fault(11, error, true);
    public CpuFaultException Ts(uint error) => Fault(10, error, true);
    public CpuFaultException De() => Fault(0);

    /// <summary>Address of the last INT n / INT3 / INTO raised, for a fault during its delivery.</summary>
    private ulong _softwareIntRip;

    /// <summary>
    /// INT n / INT3 / INTO at <paramref name="instructionIp"/>: delivered with the next instruction's address,
    /// through the same path as faults.
    /// </summary>
    public CpuFaultException SoftwareInterrupt(int vector, ulong instructionIp)
    {
        _softwareIntRip = instructionIp;
        var f = Fault(vector);
        f.Software = true;
        return f;
    }

    public void LogUnimplemented(string what)
    {
        if (_log is not null && _log.IsEnabled(LogLevel.Debug))
            _log.LogDebug("vCPU {Index}: {What} at RIP 0x{Rip:x} is not implemented; raising #UD", Index, what, Rip);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_apic is not null) _apic.Wake = null;
        _cache.Unregister(this);
        _jit?.Unregister(this);
        // A late Kick or RequestAttention from another thread writes to a word that outlives R.
        _attnPtr = AttentionSink;
        Thread.MemoryBarrier();
        NativeMemory.Free(R);
        if (_njc is not null) NativeMemory.Free(_njc);
        NativeMemory.Free(Xmm);
        _mmu.Dispose();
        _wakeEvent.Dispose();
    }
}

/// <summary>A guest exception raised while executing an instruction; preallocated per vCPU, never escapes the CPU.</summary>
internal sealed class CpuFaultException : Exception
{
    public int Vector;
    public uint ErrorCode;
    public bool HasErrorCode;
    public bool Software;
    public bool NonCanonical;

    /// <summary>Makes this the (non-software) exception <paramref name="vector"/> and returns it, to be thrown.</summary>
    public CpuFaultException Set(int vector, uint error, bool hasError)
    {
        Vector = vector;
        ErrorCode = error;
        HasErrorCode = hasError;
        Software = false;
        NonCanonical = false;
        return this;
    }

    public CpuFaultException() : base("guest exception") { }
    public CpuFaultException(string message) : base(message) { }
    public CpuFaultException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Stops the current block early (its page was rewritten under it); RIP is already set.</summary>
internal sealed class BlockAbortException : Exception
{
    public BlockAbortException() : base("block invalidated") { }
    public BlockAbortException(string message) : base(message) { }
    public BlockAbortException(string message, Exception inner) : base(message, inner) { }
}

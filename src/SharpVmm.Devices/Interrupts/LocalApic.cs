using System.Buffers.Binary;
using System.Numerics;
using SharpVmm.Core.Interrupts;
using SharpVmm.Devices.Timers;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Interrupts;

/// <summary>
/// One vCPU's local APIC (version 0x14, 6 LVT entries), in xAPIC or x2APIC mode (LocalApic.X2Apic.cs): priorities,
/// IRR/ISR/TMR, EOI (broadcast to the IOAPIC for level-triggered vectors), the LVT, the timer (one-shot, periodic,
/// TSC-deadline) and the ICR for IPIs.
/// LINT0 in ExtINT mode passes the 8259's INT through (virtual-wire mode), as does a hardware-disabled APIC.
/// Thread-safe: the vCPU thread, device threads and the timer thread may all call in; one lock per APIC, never held
/// while calling into another controller. <see cref="HasInterrupt"/> is a single volatile load.
/// Create through <see cref="EmulatedIrqChip"/>.
/// </summary>
public sealed partial class LocalApic : ILocalApic
{
    public const uint VersionValue = 0x0005_0014; // version 0x14, max LVT entry 5
    public const ulong DefaultBaseAddress = PcLayout.LocalApicBase;

    private const ulong BaseMsrBsp = 1ul << 8;
    private const ulong BaseMsrX2Apic = 1ul << 10;
    private const ulong BaseMsrEnable = 1ul << 11;
    private const ulong BaseMsrAddress = 0xF_FFFF_F000;
    private const uint SvrEnable = 1u << 8;

    private readonly object _gate = new();
    private readonly ApicBus _bus;
    private readonly PicPair? _pic;

    // Read without the lock by the bus (destination matching, lowest-priority arbitration).
    private volatile byte _id;
    private readonly byte _initialId;   // the x2APIC ID (CPUID's initial APIC ID): fixed, whatever the guest wrote in xAPIC mode
    private volatile bool _x2apic;
    private volatile uint _ldr;
    private volatile uint _dfr;
    private volatile uint _tpr;
    private volatile bool _hwEnabled;
    private volatile bool _swEnabled;

    private ulong _baseMsr;
    private uint _svr;
    private readonly uint[] _irr = new uint[8];
    private readonly uint[] _isr = new uint[8];
    private readonly uint[] _tmr = new uint[8];
    private readonly uint[] _lvt = new uint[6]; // timer, thermal, perf, LINT0, LINT1, error
    private uint _esr;
    private uint _esrAccumulated;
    private uint _icrLow;
    private uint _icrHigh;

    private bool _extIntLine;   // the PIC's INT output as seen on LINT0
    private bool _extIntOnce;   // an ExtINT message from the IOAPIC
    private bool _lint1Level;

    private volatile int _pending; // 1: a maskable interrupt can be acknowledged
    private int _nmiPending;
    private int _initPending;
    private int _sipiPending;
    private byte _sipiVector;
    private bool _waitingForSipi;

    internal LocalApic(ApicBus bus, TimerService timers, int apicId, bool isBsp, PicPair? pic)
    {
        if ((uint)apicId > 0xFE) throw new ArgumentOutOfRangeException(nameof(apicId), apicId, "xAPIC IDs are 0 to 254 (255 is broadcast).");
        _bus = bus;
        _pic = pic;
        _timers = timers;
        _timer = timers.CreateTimer(OnTimerExpired);
        _id = (byte)apicId;
        _initialId = (byte)apicId;
        IsBootstrapProcessor = isBsp;
        _baseMsr = DefaultBaseAddress | BaseMsrEnable | (isBsp ? BaseMsrBsp : 0);
        _hwEnabled = true;
        ResetRegistersLocked();
        if (isBsp)
        {
            // The state firmware leaves behind: virtual-wire mode, PIC through LINT0, NMI through LINT1.
            _lvt[3] = (uint)ApicDeliveryMode.ExtInt << 8;
            _lvt[4] = (uint)ApicDeliveryMode.Nmi << 8;
        }
        _waitingForSipi = !isBsp;
    }

    public int ApicId => _id;

    public bool IsBootstrapProcessor { get; }

    /// <summary>Guest-physical address of this APIC's register page (IA32_APIC_BASE bits 35:12).</summary>
    public ulong BaseAddress
    {
        get { lock (_gate) return _baseMsr & BaseMsrAddress; }
    }

    /// <summary>IA32_APIC_BASE.EN: when clear the APIC is off and the PIC's INT goes straight to the CPU.</summary>
    public bool IsHardwareEnabled => _hwEnabled;

    /// <summary>TPR; CR8 is <c>Tpr &gt;&gt; 4</c> (write CR8 as <c>Tpr = cr8 &lt;&lt; 4</c>).</summary>
    public byte Tpr
    {
        get => (byte)_tpr;
        set
        {
            bool wake;
            lock (_gate)
            {
                _tpr = value;
                wake = UpdatePendingLocked();
            }
            if (wake) Wake?.Invoke();
        }
    }

    /// <summary>Set by the vCPU thread, invoked from whichever thread delivers; volatile so a late setter is seen.</summary>
    public Action? Wake
    {
        get => _wake;
        set => _wake = value;
    }

    private volatile Action? _wake;

    public bool HasInterrupt => _pending != 0;

    public int Acknowledge()
    {
        lock (_gate)
        {
            if (!ExtIntActiveLocked())
            {
                int vector = DeliverableVectorLocked();
                if (vector < 0) return -1;
                ClearBit(_irr, vector);
                SetBit(_isr, vector);
                UpdatePendingLocked();
                return vector;
            }
            _extIntOnce = false;
            UpdatePendingLocked(); // the PIC's INT may stay high; then LINT0 keeps this set
        }
        // The PIC is asked outside our lock: it calls back into SetExtIntLine under its own lock.
        return _pic is null ? -1 : _pic.Acknowledge();
    }

    public bool TryTakeNmi() => Volatile.Read(ref _nmiPending) != 0 && Interlocked.Exchange(ref _nmiPending, 0) != 0;

    public bool TryTakeInit() => Volatile.Read(ref _initPending) != 0 && Interlocked.Exchange(ref _initPending, 0) != 0;

    public bool TryTakeStartup(out byte vector)
    {
        lock (_gate)
        {
            vector = _sipiVector;
            if (_sipiPending == 0) return false;
            _sipiPending = 0;
            return true;
        }
    }

    public ApicMsrResult ReadMsr(uint msr, out ulong value)
    {
        switch (msr)
        {
            case ApicRegisters.MsrApicBase:
                lock (_gate) value = _baseMsr;
                return ApicMsrResult.Done;
            case ApicRegisters.MsrTscDeadline:
                lock (_gate) value = TimerMode == TimerModeTscDeadline ? _tscDeadline : 0;
                return ApicMsrResult.Done;
            case >= ApicRegisters.X2ApicMsrFirst and <= ApicRegisters.X2ApicMsrLast:
                return ReadX2ApicMsr(msr, out value);
            default:
                value = 0;
                return ApicMsrResult.NotApic;
        }
    }

    public ApicMsrResult WriteMsr(uint msr, ulong value)
    {
        switch (msr)
        {
            case ApicRegisters.MsrApicBase:
                return WriteBaseMsr(value) ? ApicMsrResult.Done : ApicMsrResult.Fault;
            case ApicRegisters.MsrTscDeadline:
                lock (_gate) WriteTscDeadlineLocked(value);
                return ApicMsrResult.Done;
            case >= ApicRegisters.X2ApicMsrFirst and <= ApicRegisters.X2ApicMsrLast:
                return WriteX2ApicMsr(msr, value);
            default:
                return ApicMsrResult.NotApic;
        }
    }

    /// <summary><see cref="ReadMsr"/> that succeeded (for callers that know the MSR is a valid access).</summary>
    public bool TryReadMsr(uint msr, out ulong value) => ReadMsr(msr, out value) == ApicMsrResult.Done;

    public bool TryWriteMsr(uint msr, ulong value) => WriteMsr(msr, value) == ApicMsrResult.Done;

    /// <summary>IA32_APIC_BASE.EXTD: the APIC is in x2APIC mode (registers through MSRs, the MMIO page is off).</summary>
    public bool IsX2ApicMode => _x2apic;

    public void Read(uint offset, Span<byte> data)
    {
        uint aligned = offset & 0xFF0;
        uint value;
        lock (_gate) value = ReadRegisterLocked(aligned);
        Span<byte> slot = stackalloc byte[16];
        slot.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(slot, value);
        int start = (int)(offset & 0xF);
        for (int i = 0; i < data.Length; i++)
            data[i] = start + i < 16 ? slot[start + i] : (byte)0;
    }

    public void Write(uint offset, ReadOnlySpan<byte> data)
    {
        // Registers are 32 bits at 16-byte alignment; other accesses have undefined effect on hardware: ignore them.
        if ((offset & 0xF) != 0 || data.Length < 4 || offset >= 0x1000) return;
        WriteRegister(offset, BinaryPrimitives.ReadUInt32LittleEndian(data));
    }

    /// <summary>The PIC's INT output (wired to LINT0 on every CPU; only one in ExtINT mode takes it).</summary>
    internal void SetExtIntLine(bool level)
    {
        bool wake;
        lock (_gate)
        {
            _extIntLine = level;
            wake = UpdatePendingLocked();
        }
        if (wake) Wake?.Invoke();
    }

    /// <summary>Drives LINT1 (normally the NMI input): an NMI on the rising edge when its LVT says NMI and is unmasked.</summary>
    public void SetLint1(bool level)
    {
        bool wake = false;
        lock (_gate)
        {
            bool rising = level && !_lint1Level;
            _lint1Level = level;
            if (rising) wake = LocalInterruptLocked(4);
        }
        if (wake) Wake?.Invoke();
    }

    /// <summary>Takes a message from the APIC bus. Returns whether it was accepted (for the IOAPIC's remote IRR).</summary>
    internal bool Accept(in ApicMessage message)
    {
        bool accepted;
        bool wake;
        lock (_gate)
        {
            (accepted, wake) = AcceptLocked(message.Mode, message.Vector, message.LevelTriggered);
        }
        if (wake) Wake?.Invoke();
        return accepted;
    }

    private (bool Accepted, bool Wake) AcceptLocked(ApicDeliveryMode mode, byte vector, bool level)
    {
        if (!_hwEnabled) return (false, false);
        switch (mode)
        {
            case ApicDeliveryMode.Fixed:
            case ApicDeliveryMode.LowestPriority:
                if (!_swEnabled) return (false, false);
                if (vector < 16)
                {
                    RaiseErrorLocked(1u << 6); // receive illegal vector
                    return (false, UpdatePendingLocked());
                }
                SetBit(_irr, vector);
                if (level) SetBit(_tmr, vector); else ClearBit(_tmr, vector);
                return (true, UpdatePendingLocked());
            case ApicDeliveryMode.Nmi:
                Volatile.Write(ref _nmiPending, 1);
                return (true, true);
            case ApicDeliveryMode.Init:
                ResetRegistersLocked();
                _sipiPending = 0;
                _waitingForSipi = true;
                UpdatePendingLocked();
                Volatile.Write(ref _initPending, 1);
                return (true, true);
            case ApicDeliveryMode.Startup:
                if (!_waitingForSipi) return (false, false);
                _waitingForSipi = false;
                _sipiVector = vector;
                _sipiPending = 1;
                return (true, true);
            case ApicDeliveryMode.ExtInt:
                _extIntOnce = true;
                return (true, UpdatePendingLocked());
            default:
                return (false, false); // SMI: no SMM
        }
    }

    /// <summary>Delivers LVT entry <paramref name="index"/> to this CPU; returns whether to wake it.</summary>
    private bool LocalInterruptLocked(int index)
    {
        uint lvt = _lvt[index];
        if ((lvt & ApicRegisters.LvtMasked) != 0) return false;
        var mode = index is 0 or 5 ? ApicDeliveryMode.Fixed : (ApicDeliveryMode)((lvt >> 8) & 7);
        bool level = index is 3 or 4 && (lvt & (1u << 15)) != 0 && mode == ApicDeliveryMode.Fixed;
        return mode switch
        {
            ApicDeliveryMode.Fixed or ApicDeliveryMode.Nmi => AcceptLocked(mode, (byte)lvt, level).Wake,
            _ => false, // ExtINT on LINT0 is level-sensed through _extIntLine; SMI/INIT from an LVT are not modelled
        };
    }

    private void RaiseErrorLocked(uint bits)
    {
        bool isNew = (_esrAccumulated & bits) != bits;
        _esrAccumulated |= bits;
        if (isNew) LocalInterruptLocked(5);
    }

    /// <summary>IA32_APIC_BASE; false (#GP) for reserved bits or a mode transition the SDM forbids (11.12.5).</summary>
    private bool WriteBaseMsr(ulong value)
    {
        bool wake;
        lock (_gate)
        {
            // BSP (bit 8) is read-only; bits 35:12 base, bit 10 x2APIC enable (EXTD), bit 11 global enable.
            if ((value & ~(BaseMsrAddress | BaseMsrEnable | BaseMsrX2Apic | BaseMsrBsp)) != 0) return false;
            bool enable = (value & BaseMsrEnable) != 0, x2 = (value & BaseMsrX2Apic) != 0;
            if (x2 && !enable) return false;                  // EXTD without EN is the invalid state
            if (_x2apic && enable && !x2) return false;       // x2APIC -> xAPIC must go through disabled
            if (!_hwEnabled && x2) return false;              // disabled -> x2APIC must go through xAPIC
            _baseMsr = (value & (BaseMsrAddress | BaseMsrEnable | BaseMsrX2Apic)) | (_baseMsr & BaseMsrBsp);
            if (!enable && _hwEnabled)
            {
                ResetRegistersLocked(); // re-enabling starts from the reset state (SDM 11.4.3)
                _id = _initialId;
            }
            if (x2 && !_x2apic) _id = _initialId; // the x2APIC ID is the initial APIC ID; the LDR follows from it
            _x2apic = x2;
            _hwEnabled = enable;
            wake = UpdatePendingLocked();
        }
        if (wake) Wake?.Invoke();
        return true;
    }

    private void ResetRegistersLocked()
    {
        Array.Clear(_irr);
        Array.Clear(_isr);
        Array.Clear(_tmr);
        for (int i = 0; i < _lvt.Length; i++) _lvt[i] = ApicRegisters.LvtMasked;
        _tpr = 0;
        _ldr = 0;
        _dfr = 0xFFFF_FFFF;
        _svr = 0xFF;
        _swEnabled = false;
        _esr = 0;
        _esrAccumulated = 0;
        _icrLow = 0;
        _icrHigh = 0;
        _extIntOnce = false;
        StopTimerLocked();
        _timerInitialCount = 0;
        _timerDivide = 0;
    }

    private bool ExtIntActiveLocked()
    {
        if (_extIntOnce) return true;
        if (!_extIntLine) return false;
        if (!_hwEnabled) return IsBootstrapProcessor;
        uint lint0 = _lvt[3];
        return (lint0 & ApicRegisters.LvtMasked) == 0 && ((lint0 >> 8) & 7) == (uint)ApicDeliveryMode.ExtInt;
    }

    private int ProcessorPriorityLocked()
    {
        int isrv = HighestBit(_isr);
        int tpr = (int)_tpr;
        int isrClass = isrv < 0 ? 0 : isrv & 0xF0;
        return (tpr & 0xF0) >= isrClass ? tpr : isrClass;
    }

    private int DeliverableVectorLocked()
    {
        if (!_hwEnabled || !_swEnabled) return -1;
        int irrv = HighestBit(_irr);
        if (irrv < 0) return -1;
        return (irrv & 0xF0) > (ProcessorPriorityLocked() & 0xF0) ? irrv : -1;
    }

    /// <summary>Recomputes the lock-free pending flag; true if it is set (the CPU should be woken).</summary>
    private bool UpdatePendingLocked()
    {
        bool pending = ExtIntActiveLocked() || DeliverableVectorLocked() >= 0;
        _pending = pending ? 1 : 0;
        return pending;
    }

    private void DoEoi()
    {
        int vector;
        bool broadcast;
        bool wake;
        lock (_gate)
        {
            vector = HighestBit(_isr);
            if (vector < 0) return;
            ClearBit(_isr, vector);
            broadcast = TestBit(_tmr, vector);
            wake = UpdatePendingLocked();
        }
        if (broadcast) _bus.BroadcastEoi(vector);
        if (wake) Wake?.Invoke();
    }

    /// <summary>
    /// Physical destination: the APIC ID, or the broadcast ID of the message's format (0xFF for an 8-bit xAPIC
    /// destination — the IOAPIC's, whatever mode this APIC is in — 0xFFFFFFFF for an x2APIC ICR's 32-bit one).
    /// </summary>
    internal bool MatchesPhysical(uint destination, bool x2ApicFormat)
        => destination == (x2ApicFormat ? 0xFFFF_FFFFu : 0xFFu) || destination == _id;

    internal bool MatchesLogical(uint destination, bool x2ApicFormat)
    {
        if (_x2apic)
        {
            // x2APIC cluster model: destination bits 31:16 the cluster, 15:0 a member bitmap, against the derived LDR.
            if (destination == (x2ApicFormat ? 0xFFFF_FFFFu : 0xFFu)) return true;
            uint ldr = X2ApicLdr;
            return destination >> 16 == ldr >> 16 && (destination & ldr & 0xFFFF) != 0;
        }
        if (x2ApicFormat)
        {
            // From an x2APIC-mode sender to an xAPIC-mode receiver (a mixed system, only while CPUs switch modes):
            // the low byte is all an xAPIC can compare.
            if (destination == 0xFFFF_FFFF) return true;
            destination &= 0xFF;
        }
        byte logicalId = (byte)(_ldr >> 24);
        if ((_dfr >> 28) == 0xF)
            return (logicalId & destination) != 0; // flat model
        // cluster model: high nibble cluster (15 = all clusters), low nibble member bitmap
        uint cluster = (destination & 0xFF) >> 4;
        return (cluster == 0xF || cluster == (uint)(logicalId >> 4)) && (destination & logicalId & 0xF) != 0;
    }

    /// <summary>Arbitration key for lowest-priority delivery (lower wins).</summary>
    internal uint ArbitrationPriority => _tpr & 0xF0;

    internal bool IsSoftwareEnabled => _swEnabled;

    private static int HighestBit(uint[] bits)
    {
        for (int i = 7; i >= 0; i--)
        {
            uint w = bits[i];
            if (w != 0) return i * 32 + 31 - BitOperations.LeadingZeroCount(w);
        }
        return -1;
    }

    private static void SetBit(uint[] bits, int vector) => bits[vector >> 5] |= 1u << (vector & 31);

    private static void ClearBit(uint[] bits, int vector) => bits[vector >> 5] &= ~(1u << (vector & 31));

    private static bool TestBit(uint[] bits, int vector) => (bits[vector >> 5] & (1u << (vector & 31))) != 0;
}

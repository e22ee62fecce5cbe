using System.Runtime.CompilerServices;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;
using SharpVmm.Kvm.Interop;
using SharpVmm.Kvm.State;

namespace SharpVmm.Kvm;

/// <summary>
/// A KVM vCPU as an <see cref="IVcpu"/>. <see cref="Run"/> loops on KVM_RUN, sends port I/O (string I/O element by
/// element) and MMIO to the bus, and returns only control exits.
/// <para>
/// HLT: without the in-kernel irqchip KVM exits to user space and Run returns <see cref="VcpuExitReason.Halt"/>. With
/// the irqchip, HLT waits inside the kernel for an interrupt (measured on this host's PVM as on real KVM), so Run
/// does not return for it; a <see cref="Kick"/> still ends the wait.
/// </para>
/// </summary>
public sealed unsafe class KvmVcpu : IVcpu
{
    private readonly KvmAccelerator _owner;
    private readonly KvmVcpuFd _fd;
    private readonly IIoBus _bus;
    private readonly uint[] _msrsToSave;
    private readonly Lock _signalLock = new();
    private nuint _thread;
    private bool _inRun;
    private int _kickPending;
    private bool _disposed;
    private ICpuInterruptController? _interruptController;

    internal KvmVcpu(KvmAccelerator owner, KvmVcpuFd fd, uint[] msrsToSave)
    {
        _owner = owner;
        _fd = fd;
        _bus = owner.Bus;
        _msrsToSave = msrsToSave;
        // Install the kick signal now, so the first Kick never races its installation.
        _ = KickSignal.Instance;
    }

    public int Index => _fd.Id;

    /// <summary>The raw vCPU (ioctls, kvm_run) for callers that need more than <see cref="IVcpu"/>.</summary>
    public KvmVcpuFd Fd => _fd;

    /// <summary>
    /// The user-space interrupt controller (the machine's emulated PIC/APIC) for a VM without the in-kernel irqchip.
    /// When set, Run injects its interrupts with KVM_INTERRUPT whenever the guest can take one, asking KVM for an
    /// interrupt-window exit otherwise, and does not return Halt while an interrupt is ready for an interruptible guest.
    /// When the controller raises an interrupt while the vCPU is in Run, call <see cref="Kick"/> from its
    /// <see cref="ICpuInterruptController.Wake"/> (the machine re-runs the vCPU, which then injects). Must stay null
    /// with the in-kernel irqchip, which delivers interrupts itself.
    /// </summary>
    public ICpuInterruptController? InterruptController
    {
        get => _interruptController;
        set
        {
            if (value is not null && _owner.Options.IrqChip)
                throw new KvmException(KvmErrorKind.InvalidArgument, "a user-space interrupt controller cannot be used with the in-kernel irqchip (KvmOptions.IrqChip)");
            _interruptController = value;
        }
    }

    /// <summary>KVM exits handled by <see cref="Run"/> so far, I/O and MMIO included (written by the vCPU thread only).</summary>
    public long ExitCount { get; private set; }

    /// <inheritdoc/>
    public VcpuExit Run()
    {
        KvmRun* run = _fd.Run;
        lock (_signalLock)
        {
            _thread = Libc.PthreadSelf();
            _inRun = true;
        }
        try
        {
            while (true)
            {
                // A kick whose immediate_exit write lost a race with our reset below is still pending: re-arm it.
                if (Volatile.Read(ref _kickPending) != 0) Volatile.Write(ref run->ImmediateExit, 1);
                if (_interruptController is { } pic) OfferInterrupt(pic, run);
                int err = _fd.RunOnce();
                if (err != 0)
                {
                    if (err is Libc.EINTR or Libc.EAGAIN)
                    {
                        // immediate_exit also made KVM finish any I/O we completed, so the state is consistent now.
                        Volatile.Write(ref run->ImmediateExit, 0);
                        if (Interlocked.Exchange(ref _kickPending, 0) != 0) return VcpuExit.Kicked;
                        continue; // a signal that was not ours (or a kick already consumed)
                    }
                    return new VcpuExit(VcpuExitReason.InternalError, (ulong)err, $"KVM_RUN failed on vCPU {Index}: {Libc.Describe(err)}");
                }
                ExitCount++;
                switch ((KvmExitReason)run->ExitReason)
                {
                    case KvmExitReason.Io:
                        if (!HandleIo(run)) return BadIo(run);
                        break;
                    case KvmExitReason.Mmio:
                        if (!HandleMmio(run)) return new VcpuExit(VcpuExitReason.InternalError, run->Mmio.Len, $"KVM reported an MMIO access of {run->Mmio.Len} bytes at 0x{run->Mmio.PhysAddr:x}");
                        break;
                    case KvmExitReason.Hlt:
                        // A user-space controller with an interrupt ready for an interruptible guest: deliver, don't halt.
                        if (_interruptController is { HasInterrupt: true } && (run->IfFlag != 0)) break;
                        return VcpuExit.Halt;
                    case KvmExitReason.Shutdown:
                        return VcpuExit.Shutdown;
                    case KvmExitReason.Intr:
                        if (Interlocked.Exchange(ref _kickPending, 0) != 0)
                        {
                            Volatile.Write(ref run->ImmediateExit, 0);
                            return VcpuExit.Kicked;
                        }
                        break;
                    case KvmExitReason.IrqWindowOpen:
                        break;
                    case KvmExitReason.FailEntry:
                        return new VcpuExit(VcpuExitReason.FailEntry, run->FailEntry.HardwareEntryFailureReason,
                            $"KVM could not enter the guest on vCPU {Index}: hardware entry failure reason 0x{run->FailEntry.HardwareEntryFailureReason:x} (host cpu {run->FailEntry.Cpu})");
                    case KvmExitReason.InternalError:
                        return InternalError(run);
                    case KvmExitReason.SystemEvent:
                        return SystemEvent(run);
                    default:
                        return new VcpuExit(VcpuExitReason.Unknown, run->ExitReason, $"unhandled KVM exit reason {run->ExitReason} ({(KvmExitReason)run->ExitReason}) on vCPU {Index}");
                }
            }
        }
        finally
        {
            lock (_signalLock) _inRun = false;
        }
    }

    private void OfferInterrupt(ICpuInterruptController pic, KvmRun* run)
    {
        if (!pic.HasInterrupt)
        {
            run->RequestInterruptWindow = 0;
            return;
        }
        if (run->ReadyForInterruptInjection != 0 && run->IfFlag != 0)
        {
            int vector = pic.Acknowledge();
            if (vector >= 0) _fd.Interrupt((byte)vector);
            run->RequestInterruptWindow = pic.HasInterrupt ? (byte)1 : (byte)0;
        }
        else
        {
            // KVM exits with IRQ_WINDOW_OPEN as soon as the guest can take it; the next pass injects.
            run->RequestInterruptWindow = 1;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool HandleIo(KvmRun* run)
    {
        ref KvmRunIo io = ref run->Io;
        int size = io.Size;
        ulong count = io.Count;
        ulong bytes = (ulong)size * count;
        // KVM is trusted, but a bad offset here would be a host memory access outside the mapping: check it.
        if (size is not (1 or 2 or 4) || count == 0 || io.DataOffset > (ulong)_fd.RunSize || bytes > (ulong)_fd.RunSize - io.DataOffset)
            return false;
        byte* data = (byte*)run + io.DataOffset;
        ushort port = io.Port;
        if (io.Direction == KvmRunIo.Out)
        {
            for (ulong i = 0; i < count; i++, data += size) _bus.PioWrite(port, new ReadOnlySpan<byte>(data, size));
        }
        else
        {
            for (ulong i = 0; i < count; i++, data += size) _bus.PioRead(port, new Span<byte>(data, size));
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool HandleMmio(KvmRun* run)
    {
        ref KvmRunMmio mmio = ref run->Mmio;
        uint len = mmio.Len;
        if (len is 0 or > 8) return false;
        byte* data = (byte*)Unsafe.AsPointer(ref mmio.Data[0]);
        if (mmio.IsWrite != 0) _bus.MmioWrite(mmio.PhysAddr, new ReadOnlySpan<byte>(data, (int)len));
        else _bus.MmioRead(mmio.PhysAddr, new Span<byte>(data, (int)len));
        return true;
    }

    private VcpuExit BadIo(KvmRun* run)
        => new(VcpuExitReason.InternalError, run->Io.Port,
            $"KVM reported port I/O the VMM cannot handle: port 0x{run->Io.Port:x}, size {run->Io.Size}, count {run->Io.Count}, data offset 0x{run->Io.DataOffset:x} (mapping is {_fd.RunSize} bytes)");

    private VcpuExit InternalError(KvmRun* run)
    {
        ref KvmRunInternal e = ref run->Internal;
        uint n = Math.Min(e.NData, (uint)KvmRunInternal.MaxData);
        var text = new System.Text.StringBuilder($"KVM internal error on vCPU {Index}: {KvmInternalError.Describe(e.Suberror)}");
        if (n > 0)
        {
            text.Append("; data");
            for (int i = 0; i < n; i++) text.Append(" 0x").Append(e.Data[i].ToString("x"));
        }
        if (e.Suberror == KvmInternalError.Emulation)
            text.Append(" (PVM hosts cannot run guests that need instructions their emulator lacks: use the emu accelerator)");
        return new VcpuExit(VcpuExitReason.InternalError, e.Suberror, text.ToString());
    }

    private static VcpuExit SystemEvent(KvmRun* run)
    {
        uint type = run->SystemEvent.Type;
        string what = type switch
        {
            KvmSystemEventType.Shutdown => "shutdown",
            KvmSystemEventType.Reset => "reset",
            KvmSystemEventType.Crash => "crash",
            KvmSystemEventType.Wakeup => "wakeup",
            KvmSystemEventType.Suspend => "suspend",
            _ => $"type {type}",
        };
        return new VcpuExit(VcpuExitReason.SystemEvent, type, $"guest system event: {what}");
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Sets a flag and kvm_run.immediate_exit (so a KVM_RUN about to start returns at once), then, if the vCPU thread
    /// is inside <see cref="Run"/>, sends it the kick signal so a KVM_RUN in progress returns EINTR.
    /// </remarks>
    public void Kick()
    {
        // Under the lock so a kick racing Dispose never touches an unmapped kvm_run; a kick after Dispose is a no-op.
        lock (_signalLock)
        {
            if (_disposed) return;
            Volatile.Write(ref _kickPending, 1);
            Volatile.Write(ref _fd.Run->ImmediateExit, 1);
            if (_inRun) KickSignal.Instance.Send(_thread);
        }
    }

    /// <summary>
    /// Registers, segments, control registers, FPU/SSE, the saved MSRs, events and, with the irqchip, the LAPIC page
    /// and halted state. Call while the vCPU is not in <see cref="Run"/>.
    /// </summary>
    public VcpuState GetState()
    {
        var s = new VcpuState();
        VcpuStateMapper.ToState(_fd.GetRegs(), s);
        VcpuStateMapper.ToState(_fd.GetSregs(), s);
        if (_owner.HasXsave)
        {
            _fd.GetXsave(out var xsave);
            s.Fpu = FxsaveArea.Read(xsave);
            if (_owner.PkruXsaveOffset is int pkruAt) s.Pkru = XsavePkru.Read(xsave, pkruAt);
        }
        else
        {
            s.Fpu = VcpuStateMapper.ToState(_fd.GetFpu());
        }
        if (_owner.HasXcrs) s.Xcr0 = ReadXcr0();
        ReadMsrs(s.Msrs);
        bool halted = false;
        if (_owner.Options.IrqChip)
        {
            _fd.GetLapic(out var lapic);
            s.Lapic = new ReadOnlySpan<byte>(lapic.Regs, KvmLapicState.Size).ToArray();
            halted = _fd.GetMpState().MpState == KvmMpState.Halted;
        }
        if (_owner.HasVcpuEvents) s.Events = VcpuStateMapper.ToState(_fd.GetVcpuEvents(), halted);
        return s;
    }

    private static KvmException NoPkru(uint pkru)
        => new(KvmErrorKind.InvalidArgument, $"the state has PKRU 0x{pkru:x8}, but KVM on this host has no protection-key state (no PKU)");

    /// <summary>XCR0 from KVM_GET_XCRS (x87 only if KVM lists no XCR0).</summary>
    private ulong ReadXcr0()
    {
        var xcrs = _fd.GetXcrs();
        for (int i = 0; i < (int)Math.Min(xcrs.NrXcrs, (uint)KvmXcrs.MaxXcrs); i++)
            if (xcrs[i].Xcr == 0) return xcrs[i].Value;
        return 1;
    }

    private void ReadMsrs(SortedDictionary<uint, ulong> into)
    {
        var entries = new KvmMsrEntry[_msrsToSave.Length];
        for (int i = 0; i < entries.Length; i++) entries[i].Index = _msrsToSave[i];
        int start = 0;
        while (start < entries.Length)
        {
            var rest = entries.AsSpan(start);
            int n = _fd.GetMsrs(rest);
            for (int i = 0; i < n; i++) into[rest[i].Index] = rest[i].Data;
            // KVM stops at the first MSR it cannot read: skip that one (it is not part of this vCPU's state).
            start += n + 1;
        }
    }

    /// <summary>
    /// Loads a whole <see cref="VcpuState"/>. <see cref="VcpuState.Lapic"/> is applied only with the in-kernel irqchip
    /// (without it the machine's own APIC model owns that state). An MSR KVM refuses is an error naming it.
    /// </summary>
    public void SetState(VcpuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Gprs.Length != 16)
            throw new KvmException(KvmErrorKind.InvalidArgument, $"vCPU state must have 16 general registers, got {state.Gprs.Length}");
        // Refused before anything is loaded, so a state this host cannot hold leaves the vCPU as it was.
        if (state.Pkru != 0 && _owner.PkruXsaveOffset is null) throw NoPkru(state.Pkru);
        _fd.SetSregs(VcpuStateMapper.ToSregs(state));
        _fd.SetRegs(VcpuStateMapper.ToRegs(state));
        if (_owner.HasXsave)
        {
            // Read-modify-write keeps the AVX and other components VcpuState does not carry.
            _fd.GetXsave(out var xsave);
            FxsaveArea.Write(state.Fpu, ref xsave);
            if (_owner.PkruXsaveOffset is int pkruAt) XsavePkru.Write(state.Pkru, ref xsave, pkruAt);
            _fd.SetXsave(xsave);
        }
        else
        {
            _fd.SetFpu(VcpuStateMapper.ToKvm(state.Fpu));
        }
        if (_owner.HasXcrs && ReadXcr0() != state.Xcr0)
        {
            var xcrs = new KvmXcrs { NrXcrs = 1 };
            xcrs[0] = new KvmXcr { Xcr = 0, Value = state.Xcr0 };
            _fd.SetXcrs(xcrs);
        }
        WriteMsrs(state.Msrs);
        if (_owner.Options.IrqChip)
        {
            if (state.Lapic is { } page)
            {
                if (page.Length != KvmLapicState.Size)
                    throw new KvmException(KvmErrorKind.InvalidArgument, $"LAPIC state must be {KvmLapicState.Size} bytes, got {page.Length}");
                KvmLapicState lapic;
                page.CopyTo(new Span<byte>(lapic.Regs, KvmLapicState.Size));
                _fd.SetLapic(lapic);
            }
            // VcpuState has no wait-for-SIPI state: an AP that KVM holds for INIT/SIPI stays held unless the state says
            // halted, so giving an application processor its initial registers does not start it early.
            uint current = _fd.GetMpState().MpState;
            uint wanted = state.Events.Halted ? KvmMpState.Halted
                : current is KvmMpState.Runnable or KvmMpState.Halted ? KvmMpState.Runnable : current;
            if (wanted != current) _fd.SetMpState(new KvmMpState { MpState = wanted });
        }
        if (_owner.HasVcpuEvents) _fd.SetVcpuEvents(VcpuStateMapper.ToKvm(state.Events));
    }

    private void WriteMsrs(SortedDictionary<uint, ulong> msrs)
    {
        var entries = new List<KvmMsrEntry>(msrs.Count);
        foreach (var (index, value) in msrs)
            if (!MsrCatalog.HasOwnField(index)) entries.Add(new KvmMsrEntry { Index = index, Data = value });
        if (entries.Count == 0) return;
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(entries);
        int n = _fd.SetMsrs(span);
        if (n < span.Length)
            throw new KvmException(KvmErrorKind.InvalidArgument,
                $"KVM refused MSR 0x{span[n].Index:x} = 0x{span[n].Data:x} on vCPU {Index}: this host cannot restore that state (snapshot from another CPU model?)");
    }

    internal void DisposeFd() => DisposeCore();

    /// <summary>Closes the vCPU. Throws <see cref="InvalidOperationException"/> while its thread is in <see cref="Run"/>: kick and wait first.</summary>
    /// <remarks>KVM frees vCPUs only with their VM, so the index cannot be created again in this accelerator.</remarks>
    public void Dispose() => DisposeCore();

    private bool DisposeCore()
    {
        lock (_signalLock)
        {
            if (_inRun) throw new InvalidOperationException($"vCPU {Index} is running: kick it and let Run return before disposing it");
            if (_disposed) return false;
            _disposed = true;
        }
        _fd.Dispose();
        return true;
    }
}

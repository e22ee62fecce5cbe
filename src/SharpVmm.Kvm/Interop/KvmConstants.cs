namespace SharpVmm.Kvm.Interop;

/// <summary>KVM_CAP_* numbers this VMM asks about (linux/kvm.h).</summary>
public enum KvmCap
{
    Irqchip = 0,
    UserMemory = 3,
    SetTssAddr = 4,
    ExtCpuid = 7,
    NrVcpus = 9,
    NrMemslots = 10,
    MpState = 14,
    SyncMmu = 16,
    UserNmi = 22,
    IrqRouting = 25,
    Pit2 = 33,
    PitState2 = 35,
    SetIdentityMapAddr = 37,
    AdjustClock = 39,
    InternalErrorData = 40,
    VcpuEvents = 41,
    Xsave = 55,
    Xcrs = 56,
    MaxVcpus = 66,
    ReadonlyMem = 81,
    ImmediateExit = 136,
}

/// <summary>KVM_EXIT_* reasons in <c>kvm_run.exit_reason</c>.</summary>
public enum KvmExitReason : uint
{
    Unknown = 0,
    Exception = 1,
    Io = 2,
    Hypercall = 3,
    Debug = 4,
    Hlt = 5,
    Mmio = 6,
    IrqWindowOpen = 7,
    Shutdown = 8,
    FailEntry = 9,
    Intr = 10,
    SetTpr = 11,
    TprAccess = 12,
    Nmi = 16,
    InternalError = 17,
    SystemEvent = 24,
    IoapicEoi = 26,
    X86Rdmsr = 29,
    X86Wrmsr = 30,
    DirtyRingFull = 31,
    X86BusLock = 33,
    Notify = 37,
}

/// <summary>KVM_INTERNAL_ERROR_* suberrors.</summary>
public static class KvmInternalError
{
    public const uint Emulation = 1, SimulEx = 2, DeliveryEv = 3, UnexpectedExitReason = 4;

    public static string Describe(uint suberror) => suberror switch
    {
        Emulation => "emulation failure (the in-kernel emulator met an instruction it cannot run)",
        SimulEx => "exception while delivering an exception",
        DeliveryEv => "event delivery failed",
        UnexpectedExitReason => "unexpected hardware exit reason",
        _ => $"suberror {suberror}",
    };
}

/// <summary>KVM_SYSTEM_EVENT_* types.</summary>
public static class KvmSystemEventType
{
    public const uint Shutdown = 1, Reset = 2, Crash = 3, Wakeup = 4, Suspend = 5, Sev = 6;
}

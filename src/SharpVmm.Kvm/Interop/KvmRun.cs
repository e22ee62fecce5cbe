using System.Runtime.InteropServices;

namespace SharpVmm.Kvm.Interop;

/// <summary>
/// The fixed head of <c>struct kvm_run</c> (the vCPU's shared page, mmap'd from the vCPU fd) with the exit-union
/// members this VMM decodes at offset 32. The page itself is <see cref="KvmSystem.VcpuMmapSize"/> bytes: string I/O
/// data lives past the struct at <see cref="KvmRunIo.DataOffset"/>.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 2352)]
public struct KvmRun
{
    [FieldOffset(0)] public byte RequestInterruptWindow;
    [FieldOffset(1)] public byte ImmediateExit;
    [FieldOffset(8)] public uint ExitReason;
    [FieldOffset(12)] public byte ReadyForInterruptInjection;
    [FieldOffset(13)] public byte IfFlag;
    [FieldOffset(14)] public ushort Flags;
    [FieldOffset(16)] public ulong Cr8;
    [FieldOffset(24)] public ulong ApicBase;
    [FieldOffset(32)] public KvmRunIo Io;
    [FieldOffset(32)] public KvmRunMmio Mmio;
    [FieldOffset(32)] public KvmRunFailEntry FailEntry;
    [FieldOffset(32)] public KvmRunInternal Internal;
    [FieldOffset(32)] public KvmRunSystemEvent SystemEvent;
    [FieldOffset(288)] public ulong KvmValidRegs;
    [FieldOffset(296)] public ulong KvmDirtyRegs;
    [FieldOffset(304)] public unsafe fixed byte SyncRegs[2048];
}

[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmRunIo
{
    public const byte In = 0, Out = 1;
    [FieldOffset(0)] public byte Direction;
    [FieldOffset(1)] public byte Size;
    [FieldOffset(2)] public ushort Port;
    [FieldOffset(4)] public uint Count;
    [FieldOffset(8)] public ulong DataOffset;
}

[StructLayout(LayoutKind.Explicit, Size = 24)]
public unsafe struct KvmRunMmio
{
    [FieldOffset(0)] public ulong PhysAddr;
    [FieldOffset(8)] public fixed byte Data[8];
    [FieldOffset(16)] public uint Len;
    [FieldOffset(20)] public byte IsWrite;
}

[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmRunFailEntry
{
    [FieldOffset(0)] public ulong HardwareEntryFailureReason;
    [FieldOffset(8)] public uint Cpu;
}

[StructLayout(LayoutKind.Explicit, Size = 136)]
public unsafe struct KvmRunInternal
{
    public const int MaxData = 16;
    [FieldOffset(0)] public uint Suberror;
    [FieldOffset(4)] public uint NData;
    [FieldOffset(8)] public fixed ulong Data[16];
}

[StructLayout(LayoutKind.Explicit, Size = 136)]
public unsafe struct KvmRunSystemEvent
{
    [FieldOffset(0)] public uint Type;
    [FieldOffset(4)] public uint NData;
    [FieldOffset(8)] public fixed ulong Data[16];
}

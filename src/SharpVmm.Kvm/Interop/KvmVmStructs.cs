using System.Runtime.InteropServices;

namespace SharpVmm.Kvm.Interop;

/// <summary><c>struct kvm_userspace_memory_region</c>; a <see cref="MemorySize"/> of 0 deletes the slot.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmUserspaceMemoryRegion
{
    public const uint LogDirtyPages = 1, ReadOnly = 2;
    public uint Slot;
    public uint Flags;
    public ulong GuestPhysAddr;
    public ulong MemorySize;
    public ulong UserspaceAddr;
}

/// <summary><c>struct kvm_dirty_log</c>: KVM writes one bit per page of the slot into <see cref="DirtyBitmap"/>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmDirtyLog
{
    [FieldOffset(0)] public uint Slot;
    [FieldOffset(8)] public ulong DirtyBitmap;
}

/// <summary><c>struct kvm_irq_level</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmIrqLevel
{
    public uint Irq;
    public uint Level;
}

/// <summary><c>struct kvm_pit_config</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmPitConfig
{
    public const uint SpeakerDummy = 1;
    public uint Flags;
    public fixed uint Pad[15];
}

/// <summary><c>struct kvm_xsave</c> (the legacy 4 KiB form, KVM_GET_XSAVE).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmXsave
{
    public const int Size = 4096;
    public fixed byte Region[Size];
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmXcr
{
    public uint Xcr;
    public uint Reserved;
    public ulong Value;
}

/// <summary><c>struct kvm_xcrs</c>: up to 16 extended control registers (XCR0 in practice).</summary>
[StructLayout(LayoutKind.Explicit, Size = 392)]
public unsafe struct KvmXcrs
{
    public const int MaxXcrs = 16;
    [FieldOffset(0)] public uint NrXcrs;
    [FieldOffset(4)] public uint Flags;
    [FieldOffset(8)] public fixed byte XcrsRaw[MaxXcrs * 16];

    public KvmXcr this[int i]
    {
        readonly get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)MaxXcrs, nameof(i));
            fixed (byte* p = XcrsRaw) return ((KvmXcr*)p)[i];
        }
        set
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)MaxXcrs, nameof(i));
            fixed (byte* p = XcrsRaw) ((KvmXcr*)p)[i] = value;
        }
    }
}

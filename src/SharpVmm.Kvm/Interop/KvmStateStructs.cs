using System.Runtime.InteropServices;

namespace SharpVmm.Kvm.Interop;

/// <summary>
/// <c>struct kvm_irqchip</c> (KVM_GET/SET_IRQCHIP): <see cref="ChipId"/> selects the master PIC (0), slave PIC (1) or
/// IOAPIC (2); <see cref="Chip"/> holds its kvm_pic_state or kvm_ioapic_state, kept opaque because a snapshot only
/// carries it from one KVM to another.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 520)]
public unsafe struct KvmIrqchip
{
    public const uint PicMaster = 0, PicSlave = 1, IoApic = 2;
    public const int ChipBytes = 512;
    [FieldOffset(0)] public uint ChipId;
    [FieldOffset(4)] public uint Pad;
    [FieldOffset(8)] public fixed byte Chip[ChipBytes];
}

/// <summary><c>struct kvm_pit_channel_state</c>: one in-kernel 8254 counter.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct KvmPitChannelState
{
    [FieldOffset(0)] public uint Count;
    [FieldOffset(4)] public ushort LatchedCount;
    [FieldOffset(6)] public byte CountLatched;
    [FieldOffset(7)] public byte StatusLatched;
    [FieldOffset(8)] public byte Status;
    [FieldOffset(9)] public byte ReadState;
    [FieldOffset(10)] public byte WriteState;
    [FieldOffset(11)] public byte WriteLatch;
    [FieldOffset(12)] public byte RwMode;
    [FieldOffset(13)] public byte Mode;
    [FieldOffset(14)] public byte Bcd;
    [FieldOffset(15)] public byte Gate;
    [FieldOffset(16)] public long CountLoadTime;
}

/// <summary><c>struct kvm_pit_state2</c> (KVM_GET/SET_PIT2): the three counters and the speaker/HPET flags.</summary>
[StructLayout(LayoutKind.Explicit, Size = 112)]
public unsafe struct KvmPitState2
{
    public const int Size = 112;
    [FieldOffset(0)] public fixed byte Channels[3 * 24];
    [FieldOffset(72)] public uint Flags;
    [FieldOffset(76)] public fixed uint Reserved[9];
}

/// <summary><c>struct kvm_clock_data</c> (KVM_GET/SET_CLOCK): the VM's kvmclock in ns.</summary>
[StructLayout(LayoutKind.Explicit, Size = 48)]
public unsafe struct KvmClockData
{
    [FieldOffset(0)] public ulong Clock;
    [FieldOffset(8)] public uint Flags;
    [FieldOffset(12)] public uint Pad0;
    [FieldOffset(16)] public ulong Realtime;
    [FieldOffset(24)] public ulong HostTsc;
    [FieldOffset(32)] public fixed uint Pad[4];
}

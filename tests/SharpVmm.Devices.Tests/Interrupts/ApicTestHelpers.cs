using System.Buffers.Binary;
using SharpVmm.Core.Time;
using SharpVmm.Devices.Interrupts;
using SharpVmm.Devices.Timers;

namespace SharpVmm.Devices.Tests.Interrupts;

/// <summary>A VM's worth of interrupt controllers over a real clock and timer service.</summary>
internal sealed class IrqChipRig : IDisposable
{
    public IrqChipRig(int cpus = 2)
    {
        Clock = new GuestClock();
        Timers = new TimerService(Clock);
        Chip = new EmulatedIrqChip(Timers, cpus);
    }

    public GuestClock Clock { get; }
    public TimerService Timers { get; }
    public EmulatedIrqChip Chip { get; }

    public LocalApic Apic(int cpu) => Chip.GetLocalApic(cpu);

    public void Dispose() => Timers.Dispose();
}

internal static class ApicIo
{
    public static uint Read(this LocalApic apic, uint offset)
    {
        Span<byte> b = stackalloc byte[4];
        apic.Read(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public static void Write(this LocalApic apic, uint offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        apic.Write(offset, b);
    }

    /// <summary>Software-enables the APIC with spurious vector 0xFF, as Linux does.</summary>
    public static void Enable(this LocalApic apic) => apic.Write(ApicRegisters.Svr, 0x1FF);

    public static bool IrrBit(this LocalApic apic, int vector) => (apic.Read(ApicRegisters.Irr + (uint)(vector >> 5) * 0x10) & (1u << (vector & 31))) != 0;

    public static bool IsrBit(this LocalApic apic, int vector) => (apic.Read(ApicRegisters.Isr + (uint)(vector >> 5) * 0x10) & (1u << (vector & 31))) != 0;

    public static bool TmrBit(this LocalApic apic, int vector) => (apic.Read(ApicRegisters.Tmr + (uint)(vector >> 5) * 0x10) & (1u << (vector & 31))) != 0;

    public static uint ReadIoApic(this IoApic io, uint index)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, index);
        io.Write(0x00, b);
        io.Read(0x10, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public static void WriteIoApic(this IoApic io, uint index, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, index);
        io.Write(0x00, b);
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        io.Write(0x10, b);
    }

    public static void Redirect(this IoApic io, int pin, ulong entry)
    {
        io.WriteIoApic((uint)(0x10 + 2 * pin + 1), (uint)(entry >> 32));
        io.WriteIoApic((uint)(0x10 + 2 * pin), (uint)entry);
    }

    public static void Out(this PicPair pic, ushort port, byte value)
    {
        Span<byte> b = [value];
        switch (port)
        {
            case 0x20 or 0x21: pic.MasterPorts.Write((ulong)(port - 0x20), b); break;
            case 0xA0 or 0xA1: pic.SlavePorts.Write((ulong)(port - 0xA0), b); break;
            case 0x4D0 or 0x4D1: pic.ElcrPorts.Write((ulong)(port - 0x4D0), b); break;
            default: throw new ArgumentOutOfRangeException(nameof(port));
        }
    }

    public static byte In(this PicPair pic, ushort port)
    {
        Span<byte> b = [0];
        switch (port)
        {
            case 0x20 or 0x21: pic.MasterPorts.Read((ulong)(port - 0x20), b); break;
            case 0xA0 or 0xA1: pic.SlavePorts.Read((ulong)(port - 0xA0), b); break;
            case 0x4D0 or 0x4D1: pic.ElcrPorts.Read((ulong)(port - 0x4D0), b); break;
            default: throw new ArgumentOutOfRangeException(nameof(port));
        }
        return b[0];
    }

    /// <summary>Linux's init_8259A: master vectors 0x30, slave 0x38, cascade on IR2, 8086 mode, all masked.</summary>
    public static void InitLikeLinux(this PicPair pic, bool autoEoi = false)
    {
        pic.Out(0x21, 0xFF);
        pic.Out(0xA1, 0xFF);
        pic.Out(0x20, 0x11);
        pic.Out(0x21, 0x30);
        pic.Out(0x21, 0x04);
        pic.Out(0x21, (byte)(autoEoi ? 0x03 : 0x01));
        pic.Out(0xA0, 0x11);
        pic.Out(0xA1, 0x38);
        pic.Out(0xA1, 0x02);
        pic.Out(0xA1, 0x01);
    }
}

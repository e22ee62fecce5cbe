using SharpVmm.Core.Io;

namespace SharpVmm.Devices.Bus;

/// <summary>One registered device window: [Base, Base + Length) in one address space.</summary>
public sealed record IoRange(IoSpace Space, ulong Base, ulong Length, IIoDevice Device, string Name)
{
    public ulong End => Base + Length;
    public bool Contains(ulong address, ulong size) => address >= Base && address - Base < Length && size <= Length - (address - Base);
    public override string ToString() => Space == IoSpace.Port ? $"{Name} at port 0x{Base:x}-0x{End - 1:x}" : $"{Name} at 0x{Base:x}-0x{End - 1:x}";
}

using Iced.Intel;
using SharpVmm.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests.Support;

/// <summary>
/// A flat 32-bit protected-mode guest without paging on top of <see cref="TestGuest"/>'s RAM and GDT: a 32-bit
/// IDT whose stubs record vector, error code and faulting EIP, then halt.
/// </summary>
public sealed class Guest32 : IDisposable
{
    public const ulong Idt32 = 0x30000, Stubs = 0x31000, Log = 0x9000, Code = 0x10000;
    public const ushort Cs32 = TestGuest.Code32, Ds32 = TestGuest.KernelDs;

    public TestGuest G { get; } = new();

    public Guest32()
    {
        for (int v = 0; v < 32; v++)
        {
            ulong h = Stubs + (ulong)v * 32;
            ulong gate = (h & 0xFFFF) | ((ulong)Cs32 << 16) | (0x8EUL << 40) | ((h >> 16) << 48);
            G.Memory.Write(Idt32 + (ulong)v * 8, gate);
            bool err = v is 8 or 10 or 11 or 12 or 13 or 14 or 17;
            var a = new Assembler(32);
            a.mov(__dword_ptr[Log], v);
            if (err)
            {
                a.pop(eax);
                a.mov(__dword_ptr[Log + 4], eax);
            }
            a.pop(eax);
            a.mov(__dword_ptr[Log + 8], eax);
            a.hlt();
            G.Memory.Write(h, TestGuest.Assemble(a, h));
        }
        G.Memory.Write(Log, uint.MaxValue);
    }

    public uint Vector => G.Memory.Read<uint>(Log);
    public uint Error => G.Memory.Read<uint>(Log + 4);
    public uint Eip => G.Memory.Read<uint>(Log + 8);

    public static SegmentRegister FlatData(ushort sel = Ds32) =>
        new() { Selector = sel, Type = 3, S = true, Present = true, Db = true, G = true, Limit = 0xFFFF_FFFF };

    /// <summary>Assembles 32-bit code at <see cref="Code"/> and runs it to its HLT (or an exception stub's).</summary>
    public VcpuState Run(Action<Assembler> code, Action<VcpuState>? adjust = null, ushort gdtLimit = 0x3F)
    {
        var a = new Assembler(32);
        code(a);
        G.Memory.Write(Code, TestGuest.Assemble(a, Code));
        var s = new VcpuState
        {
            Rip = Code, Rflags = 2, Cr0 = 0x11,
            Gdt = new DescriptorTable { Base = TestGuest.GdtBase, Limit = gdtLimit },
            Idt = new DescriptorTable { Base = Idt32, Limit = 32 * 8 - 1 },
            Cs = new SegmentRegister { Selector = Cs32, Type = 0xB, S = true, Present = true, Db = true, G = true, Limit = 0xFFFF_FFFF },
            Tr = new SegmentRegister { Type = 0xB, Present = true, Limit = 0x67 },
            Ldtr = new SegmentRegister { Unusable = true },
        };
        s.Ds = s.Es = s.Ss = s.Fs = s.Gs = FlatData();
        s[Gpr.Rsp] = 0x70000;
        adjust?.Invoke(s);
        G.Cpu.SetState(s);
        return G.RunToHalt();
    }

    public void Dispose() => G.Dispose();
}

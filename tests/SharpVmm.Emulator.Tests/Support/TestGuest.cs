using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests.Support;

/// <summary>
/// A small guest machine for directed tests: RAM, identity-mapped 4-level paging (2 MiB pages over the first
/// 1 GiB, except the first 2 MiB which use 4 KiB pages so tests can edit PTEs), a GDT with kernel/user code and
/// data and a 64-bit TSS, an IDT whose handlers record the vector and error code, and code assembled with Iced.
/// </summary>
public sealed class TestGuest : IDisposable
{
    public const ulong Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000, Pt = 0x4000;
    public const ulong GdtBase = 0x5000, IdtBase = 0x6000, TssBase = 0x7000;
    public const ulong HandlerBase = 0x20000;  // 256 stubs of 32 bytes, then the common tail
    public const ulong ExceptionLog = 0x9000;  // [vector, error, rip, cs, count] written by the stubs
    public const ulong CodeBase = 0x10000;
    public const ulong StackTop = 0x80000;
    public const ulong IstStackTop = 0x90000;
    public const ulong UserStackTop = 0xA0000;
    public const ushort KernelCs = 0x08, KernelDs = 0x10, Code32 = 0x18, UserDs = 0x23, UserCs = 0x2B, TssSel = 0x30;

    public GuestMemory Memory { get; }
    public RecordingBus Bus { get; } = new();
    public EmuAccelerator Accel { get; }
    public IVcpu Cpu { get; }

    public TestGuest(ulong ramSize = 64 << 20, EmuOptions? options = null)
    {
        Memory = GuestMemory.Create(ramSize);
        Accel = new EmuAccelerator(Memory, Bus, TestJit.Apply(options));
        Cpu = Accel.CreateVcpu(0);
        BuildTables();
    }

    private void BuildTables()
    {
        Memory.Write(Pml4, Pdpt | 0x7UL);
        Memory.Write(Pdpt, Pd | 0x7UL);
        Memory.Write(Pd, Pt | 0x7UL);
        for (ulong i = 0; i < 512; i++) Memory.Write(Pt + i * 8, (i << 12) | 0x7UL);
        for (ulong i = 1; i < 512; i++) Memory.Write(Pd + i * 8, (i << 21) | 0x87UL);
        ulong[] gdt =
        [
            0,
            0x00AF_9B00_0000_FFFF, // 0x08 kernel code 64
            0x00CF_9300_0000_FFFF, // 0x10 kernel data
            0x00CF_9B00_0000_FFFF, // 0x18 code 32
            0x00CF_F300_0000_FFFF, // 0x20 user data
            0x00AF_FB00_0000_FFFF, // 0x28 user code 64
        ];
        for (int i = 0; i < gdt.Length; i++) Memory.Write(GdtBase + (ulong)i * 8, gdt[i]);
        // 64-bit TSS descriptor (available, type 9) at 0x30.
        ulong tssLimit = 0x67;
        ulong lo = tssLimit | ((TssBase & 0xFFFFFF) << 16) | (0x89UL << 40) | ((TssBase >> 24) << 56);
        Memory.Write(GdtBase + 0x30, lo);
        Memory.Write(GdtBase + 0x38, TssBase >> 32);
        Memory.Write(TssBase + 4, StackTop);           // RSP0
        Memory.Write(TssBase + 0x24, IstStackTop);     // IST1
        Memory.Write<ushort>(TssBase + 0x66, 0x68);    // no I/O bitmap
        // IDT: every vector goes to a stub that records it; vector 14 uses IST1 when IstForPageFault is set.
        for (int v = 0; v < 256; v++)
        {
            ulong h = HandlerBase + (ulong)v * 32;
            ulong gateLo = (h & 0xFFFF) | ((ulong)KernelCs << 16) | (0x8EUL << 40) | (0x3UL << 45) | ((h >> 16 & 0xFFFF) << 48);
            Memory.Write(IdtBase + (ulong)v * 16, gateLo);
            Memory.Write(IdtBase + (ulong)v * 16 + 8, h >> 32);
            Memory.Write(h, StubFor(v));
        }
    }

    /// <summary>Exception stub: stores vector, error code (if any), faulting RIP and CS, bumps a count, then HLTs (IF=0 → exit).</summary>
    private static byte[] StubFor(int v)
    {
        bool err = v is 8 or 10 or 11 or 12 or 13 or 14 or 17;
        var a = new Assembler(64);
        a.mov(__qword_ptr[ExceptionLog], v);
        if (err)
        {
            a.pop(rax);
            a.mov(__qword_ptr[ExceptionLog + 8], rax);
        }
        a.jmp(HandlerBase + 256 * 32);
        var bytes = Assemble(a, HandlerBase + (ulong)v * 32);
        if (bytes.Length > 32) throw new InvalidOperationException("stub too long");
        return bytes;
    }

    public void InstallCommonHandlerTail()
    {
        var a = new Assembler(64);
        a.mov(rax, __qword_ptr[rsp]);
        a.mov(__qword_ptr[ExceptionLog + 16], rax);
        a.mov(rax, __qword_ptr[rsp + 8]);
        a.mov(__qword_ptr[ExceptionLog + 24], rax);
        a.inc(__qword_ptr[ExceptionLog + 32]);
        a.mov(__qword_ptr[ExceptionLog + 40], rsp);
        a.hlt();
        Memory.Write(HandlerBase + 256 * 32, Assemble(a, HandlerBase + 256 * 32));
    }

    public static byte[] Assemble(Assembler a, ulong ip)
    {
        var w = new MemoryCodeWriter();
        a.Assemble(w, ip);
        return w.ToArray();
    }

    private sealed class MemoryCodeWriter : CodeWriter
    {
        private readonly List<byte> _bytes = [];
        public override void WriteByte(byte value) => _bytes.Add(value);
        public byte[] ToArray() => [.. _bytes];
    }

    /// <summary>Assembles 64-bit code at <see cref="CodeBase"/> (or <paramref name="at"/>) and points the CPU at it in long mode, CPL 0.</summary>
    public void Load64(Action<Assembler> code, ulong at = CodeBase, bool user = false)
    {
        InstallCommonHandlerTail();
        var a = new Assembler(64);
        code(a);
        Memory.Write(at, Assemble(a, at));
        Cpu.SetState(LongModeState(at, user));
    }

    public static VcpuState LongModeState(ulong rip, bool user = false)
    {
        var s = new VcpuState
        {
            Rip = rip,
            Rflags = 0x2,
            Cr0 = 0x8005_0033,
            Cr3 = Pml4,
            Cr4 = 0x620, // PAE, OSFXSR, OSXMMEXCPT
            Efer = 0xD01, // SCE, LME, LMA, NXE
            Gdt = new DescriptorTable { Base = GdtBase, Limit = 0x3F },
            Idt = new DescriptorTable { Base = IdtBase, Limit = 0xFFF },
        };
        var code = new SegmentRegister { Selector = KernelCs, Type = 0xB, S = true, Present = true, L = true, G = true, Limit = 0xFFFF_FFFF };
        var data = new SegmentRegister { Selector = KernelDs, Type = 0x3, S = true, Present = true, Db = true, G = true, Limit = 0xFFFF_FFFF };
        if (user)
        {
            code.Selector = UserCs; code.Dpl = 3;
            data.Selector = UserDs; data.Dpl = 3;
        }
        s.Cs = code;
        s.Ds = s.Es = s.Ss = s.Fs = s.Gs = data;
        s.Tr = new SegmentRegister { Selector = TssSel, Base = TssBase, Limit = 0x67, Type = 0xB, Present = true };
        s.Ldtr = new SegmentRegister { Unusable = true };
        s[Gpr.Rsp] = user ? UserStackTop : StackTop;
        return s;
    }

    public ulong LoggedVector => Memory.Read<ulong>(ExceptionLog);
    public ulong LoggedError => Memory.Read<ulong>(ExceptionLog + 8);
    public ulong LoggedRip => Memory.Read<ulong>(ExceptionLog + 16);
    public ulong LoggedCs => Memory.Read<ulong>(ExceptionLog + 24);
    public ulong ExceptionCount => Memory.Read<ulong>(ExceptionLog + 32);
    public ulong LoggedRsp => Memory.Read<ulong>(ExceptionLog + 40);

    /// <summary>Runs until the guest halts with interrupts off; fails on any other exit.</summary>
    public VcpuState RunToHalt()
    {
        var exit = Cpu.Run();
        Assert.True(exit.Reason == VcpuExitReason.Halt, $"expected Halt, got {exit} at RIP 0x{Cpu.GetState().Rip:x} CS 0x{Cpu.GetState().Cs.Selector:x} log vector {LoggedVector} rip 0x{LoggedRip:x}");
        return Cpu.GetState();
    }

    public void Dispose()
    {
        Accel.Dispose();
        Memory.Dispose();
    }
}

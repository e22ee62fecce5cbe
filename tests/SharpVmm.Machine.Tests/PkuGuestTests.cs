using System.Buffers.Binary;
using Iced.Intel;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Machine.Tests;

/// <summary>
/// A multiboot test kernel for protection keys: from its 32-bit entry it turns on IA-32e paging (staying in
/// compatibility mode) with CR4.PKE, keys a user page, and touches it from the kernel under PKRU access- and
/// write-disable. Its 64-bit #PF handler records the error code and CR2, lifts the restriction with WRPKRU and
/// returns, so each access is retried and completes.
/// </summary>
public sealed class PkuGuestTests : IDisposable
{
    private const uint Results = 0x30_0000, PfCount = Results + 0x100, PfErrors = Results + 0x110, PfAddresses = Results + 0x130;
    private const uint Gdt = 0x20_0000, GdtDesc = 0x20_0100, Idt = 0x20_1000, IdtDesc = 0x20_2000;
    private const uint Pml4 = 0x40_0000, Pdpt = 0x40_1000, Pd = 0x40_2000, Handler = 0x18_0000, Keyed = 0x60_0000;
    private const int Key = 1;
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-pku-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static MultibootElf.Segment Data(uint address, int size, Action<byte[]> fill)
    {
        var b = new byte[size];
        fill(b);
        return new MultibootElf.Segment(address, b);
    }

    private static void Wrpkru(Assembler a, uint value)
    {
        a.mov(eax, value);
        a.xor(ecx, ecx);
        a.xor(edx, edx);
        a.wrpkru();
    }

    private static byte[] Kernel()
    {
        // The loader's selectors (code 0x10, data 0x18) stay valid in this GDT, which adds 64-bit code at 0x08.
        var gdt = Data(Gdt, 32, b =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), 0x00AF_9B00_0000_FFFF);
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), 0x00CF_9B00_0000_FFFF);
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), 0x00CF_9300_0000_FFFF);
        });
        var gdtDesc = Data(GdtDesc, 6, b => { BinaryPrimitives.WriteUInt16LittleEndian(b, 31); BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(2), Gdt); });
        var idt = Data(Idt, 256 * 16, b =>
        {
            var gate = b.AsSpan(14 * 16);
            BinaryPrimitives.WriteUInt32LittleEndian(gate, (Handler & 0xFFFF) | (0x08u << 16));
            BinaryPrimitives.WriteUInt32LittleEndian(gate[4..], (Handler & 0xFFFF_0000) | 0x8E00);
        });
        var idtDesc = Data(IdtDesc, 6, b => { BinaryPrimitives.WriteUInt16LittleEndian(b, 256 * 16 - 1); BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(2), Idt); });
        // Identity map of 64 MiB in 2 MiB pages, supervisor-only except the keyed user page.
        var tables = Data(Pml4, 0x3000, b =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b, Pdpt | 7);
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(0x1000), Pd | 7);
            for (uint i = 0; i < 32; i++)
            {
                ulong e = ((ulong)i << 21) | 0x83;
                if (i << 21 == Keyed) e |= 4 | ((ulong)Key << 59);
                BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(0x2000 + (int)i * 8), e);
            }
        });
        var keyed = Data(Keyed, 8, b => BinaryPrimitives.WriteUInt32LittleEndian(b, 0xCAFE));

        var h = new Assembler(64);
        h.push(rax); h.push(rcx); h.push(rdx);
        h.mov(rax, __qword_ptr[rsp + 24]);          // error code
        h.mov(ecx, __dword_ptr[PfCount]);
        h.mov(__dword_ptr[rcx * 4 + (int)PfErrors], eax);
        h.mov(rax, cr2);
        h.mov(__dword_ptr[rcx * 4 + (int)PfAddresses], eax);
        h.inc(__dword_ptr[PfCount]);
        h.xor(ecx, ecx); h.xor(edx, edx); h.xor(eax, eax);
        h.wrpkru();                                  // lift the restriction: the access is retried
        h.pop(rdx); h.pop(rcx); h.pop(rax);
        h.add(rsp, 8);
        h.iretq();
        var handler = new MultibootElf.Segment(Handler, MultibootElf.Assemble(h, Handler));

        return MultibootElf.Kernel(a =>
        {
            a.mov(__word_ptr[Results + 0x40], cs);
            a.lgdt(__[GdtDesc]);
            a.mov(ax, 0x18);
            a.mov(ds, ax); a.mov(es, ax); a.mov(ss, ax);
            a.lidt(__[IdtDesc]);
            a.mov(eax, cr4);
            a.or(eax, 0x20 | (1 << 22));            // PAE, PKE
            a.mov(cr4, eax);
            a.mov(eax, Pml4);
            a.mov(cr3, eax);
            a.mov(ecx, 0xC000_0080);
            a.rdmsr();
            a.or(eax, 0x100);                       // LME
            a.wrmsr();
            a.mov(eax, cr0);
            a.or(eax, unchecked((int)0x8001_0000)); // PG, WP: IA-32e compatibility mode
            a.mov(cr0, eax);

            a.mov(eax, 7); a.xor(ecx, ecx); a.cpuid();
            a.mov(__dword_ptr[Results], ecx);
            Wrpkru(a, 1u << (Key * 2));             // access-disable key 1
            a.mov(eax, __dword_ptr[Keyed]);         // #PF (PK), retried
            a.mov(__dword_ptr[Results + 4], eax);
            Wrpkru(a, 2u << (Key * 2));             // write-disable key 1
            a.mov(eax, __dword_ptr[Keyed]);         // reads are fine
            a.mov(__dword_ptr[Results + 8], eax);
            a.mov(__dword_ptr[Keyed + 4], 0x1234);  // #PF (PK, write with CR0.WP), retried
            a.xor(ecx, ecx);
            a.rdpkru();
            a.mov(__dword_ptr[Results + 12], eax);
            a.mov(eax, 0x21);
            a.@out(0xF4, eax);
            a.cli();
            a.hlt();
        }, extra: [gdt, gdtDesc, idt, idtDesc, tables, keyed, handler]);
    }

    [Fact]
    public void A_test_kernel_takes_protection_key_faults_on_a_user_page_and_lifts_them_with_wrpkru()
    {
        string path = Path.Combine(_dir, "pku.elf");
        File.WriteAllBytes(path, Kernel());
        using var vm = VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 64UL << 20,
            Cpus = 1,
            Kernel = path,
            Serial = "file:" + Path.Combine(_dir, "serial.txt"),
        });
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.PowerOff, r.Reason);
        Assert.Equal(0x43, r.ExitCode);
        var m = vm.Memory;
        Assert.Equal(Boot.Gdt.CodeSelector, m.Read<ushort>(Results + 0x40)); // the GDT above kept the loader's selectors
        Assert.Equal(0x18u, m.Read<uint>(Results) & 0x18);                     // PKU and OSPKE
        Assert.Equal(2u, m.Read<uint>(PfCount));
        Assert.Equal(0x21u, m.Read<uint>(PfErrors));                            // present, supervisor read, PK
        Assert.Equal(Keyed, m.Read<uint>(PfAddresses));
        Assert.Equal(0x23u, m.Read<uint>(PfErrors + 4));                        // present, supervisor write, PK
        Assert.Equal(Keyed + 4, m.Read<uint>(PfAddresses + 4));
        Assert.Equal(0xCAFEu, m.Read<uint>(Results + 4));
        Assert.Equal(0xCAFEu, m.Read<uint>(Results + 8));
        Assert.Equal(0u, m.Read<uint>(Results + 12));
        Assert.Equal(0x1234u, m.Read<uint>(Keyed + 4));
    }
}

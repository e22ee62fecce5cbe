using System.Buffers.Binary;
using System.Text;
using SharpVmm.Boot.Linux;
using SharpVmm.Boot.Multiboot;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Boot.Tests.Multiboot;

public sealed class MultibootLoaderTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.Create(64UL << 20);

    public void Dispose() => _memory.Dispose();

    private static byte[] HltKernel(uint at = 0x10_0000, uint bss = 0, uint flags = MultibootElf.DefaultFlags) =>
        MultibootElf.Kernel(a => { a.cli(); a.hlt(); }, at, bss, flags);

    private MultibootLayout Load(byte[] kernel, out VcpuState s, string? append = "x=1", byte[]? module = null) =>
        Load(kernel, out s, new MultibootBootSpec { Kernel = kernel, KernelPath = "/k/test.elf", Append = append, Module = module is null ? (ReadOnlyMemory<byte>?)null : module, ModulePath = module is null ? null : "/k/mod.bin" });

    private MultibootLayout Load(byte[] kernel, out VcpuState s, MultibootBootSpec spec)
    {
        s = MultibootLoader.Load(_memory, spec with { Kernel = kernel }, out var layout);
        return layout;
    }

    private uint U32(ulong a) => _memory.Read<uint>(a);

    private string CString(ulong a)
    {
        var sb = new StringBuilder();
        for (byte b; (b = _memory.Read<byte>(a)) != 0; a++) sb.Append((char)b);
        return sb.ToString();
    }

    [Fact]
    public void The_header_is_found_only_with_a_valid_checksum_in_the_first_8_KiB()
    {
        Assert.True(MultibootLoader.IsMultiboot(HltKernel()));
        var bad = HltKernel();
        int at = bad.AsSpan().IndexOf(MultibootElf.Header(MultibootElf.DefaultFlags));
        bad[at + 8] ^= 1;
        Assert.False(MultibootLoader.IsMultiboot(bad));
        var late = new byte[9000];
        MultibootElf.Header(0).CopyTo(late, 8192);
        Assert.False(MultibootLoader.IsMultiboot(late));
    }

    [Fact]
    public void Entry_state_is_flat_protected_mode_with_the_magic_and_the_info_pointer()
    {
        var kernel = HltKernel();
        var layout = Load(kernel, out var s);
        Assert.Equal(0x10_000CUL, s.Rip);
        Assert.Equal(MultibootLoader.BootloaderMagic, (uint)s[Gpr.Rax]);
        Assert.Equal(MultibootLoader.InfoAddress, s[Gpr.Rbx]);
        Assert.Equal(1UL, s.Cr0 & 1);              // PE
        Assert.Equal(0UL, s.Cr0 & (1UL << 31));    // no paging
        Assert.Equal(0UL, s.Rflags & 0x200);       // interrupts off
        Assert.True(s.Cs.Db);
        Assert.Equal(0UL, s.Cs.Base);
        Assert.Equal(0xFFFF_FFFFu, s.Cs.Limit);
        Assert.Equal(0xFFFF_FFFFu, s.Ds.Limit);
        Assert.Equal(0xFFFF_FFFFu, s.Ss.Limit);
        Assert.Equal(0UL, s.Efer);
        Assert.Equal(0x10_0000UL, layout.ImageStart);
        Assert.Equal(0xFA, _memory.Read<byte>(0x10_000C)); // CLI at the entry
    }

    [Fact]
    public void Info_structure_has_memory_command_line_module_map_and_loader_name()
    {
        byte[] module = [1, 2, 3, 4, 5];
        var layout = Load(HltKernel(bss: 0x3000), out var s, "console=off x=1", module);
        ulong mbi = s[Gpr.Rbx];
        uint flags = U32(mbi);
        foreach (uint bit in new[] { MultibootLoader.InfoMemory, MultibootLoader.InfoCmdline, MultibootLoader.InfoMods, MultibootLoader.InfoMmap, MultibootLoader.InfoLoaderName })
            Assert.NotEqual(0u, flags & bit);
        Assert.Equal(639u, U32(mbi + 4));
        Assert.Equal((64u << 10) - 1024, U32(mbi + 8));
        Assert.Equal("/k/test.elf console=off x=1", CString(U32(mbi + 16)));
        Assert.Equal(1u, U32(mbi + 20));
        ulong mod = U32(mbi + 24);
        uint modStart = U32(mod), modEnd = U32(mod + 4);
        Assert.Equal(0u, modStart & 0xFFF);
        Assert.True(modStart >= layout.ImageEnd);
        Assert.Equal(5u, modEnd - modStart);
        Assert.Equal(3, _memory.Read<byte>(modStart + 2));
        Assert.Equal("/k/mod.bin", CString(U32(mod + 8)));
        Assert.Equal("sharpvmm", CString(U32(mbi + 64)));
        uint mmapLength = U32(mbi + 44), mmapAddr = U32(mbi + 48);
        Assert.Equal(0u, mmapLength % 24);
        var expected = E820.Build(_memory);
        Assert.Equal((uint)expected.Count * 24, mmapLength);
        for (int i = 0; i < expected.Count; i++)
        {
            ulong e = mmapAddr + (ulong)i * 24;
            Assert.Equal(20u, U32(e));
            Assert.Equal(expected[i].Address, _memory.Read<ulong>(e + 4));
            Assert.Equal(expected[i].Size, _memory.Read<ulong>(e + 12));
            Assert.Equal((uint)expected[i].Type, U32(e + 20));
        }
        Assert.Contains(expected, e => e.Type == E820Type.Ram && e.Address == 0x10_0000);
    }

    [Fact]
    public void Command_line_without_append_is_the_kernel_path_and_a_space_as_qemu_builds_it()
    {
        Load(HltKernel(), out var s, append: null);
        Assert.Equal("/k/test.elf ", CString(U32(s[Gpr.Rbx] + 16)));
        Assert.Equal(0u, U32(s[Gpr.Rbx] + 20)); // no modules
    }

    [Fact]
    public void Bss_is_zeroed_and_every_segment_lands_at_its_physical_address()
    {
        _memory.Write(0x10_0100UL, 0xDEAD_BEEF_DEAD_BEEFUL);
        var kernel = MultibootElf.Kernel(a => a.hlt(), bss: 0x1000,
            extra: new MultibootElf.Segment(0x8000, [0xEA, 0xEB], 0x10));
        _memory.Write(0x8002UL, 0xFFFF_FFFFu);
        Load(kernel, out _);
        Assert.Equal(0UL, _memory.Read<ulong>(0x10_0100));
        Assert.Equal(0xEA, _memory.Read<byte>(0x8000));
        Assert.Equal(0u, _memory.Read<uint>(0x8002));
    }

    [Theory]
    [InlineData(0x8_0000u, "overlaps the loader's area")]
    [InlineData(0xE_0000u, "overlaps the loader's area")]
    [InlineData(0x3FF_F000u, "does not lie in guest RAM")]
    public void Kernels_that_do_not_fit_are_refused_in_one_line(uint at, string why)
    {
        var ex = Assert.Throws<BootException>(() => Load(HltKernel(at, bss: 0x2000), out _));
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void A_module_that_does_not_fit_and_unknown_requirements_are_refused()
    {
        var big = new byte[64 << 20];
        Assert.Contains("module", Assert.Throws<BootException>(() => Load(HltKernel(), out _, module: big)).Message, StringComparison.Ordinal);
        Assert.Contains("unknown bits 0x8", Assert.Throws<BootException>(() => Load(HltKernel(flags: 0x8), out _)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_aout_kludge_image_and_a_64_bit_elf_are_refused()
    {
        var raw = new byte[64];
        MultibootElf.Header(0x10000).CopyTo(raw, 0);
        Assert.Contains("a.out kludge", Assert.Throws<BootException>(() => Load(raw, out _)).Message, StringComparison.Ordinal);
        var elf64 = HltKernel();
        elf64[4] = 2;
        Assert.Contains("64-bit", Assert.Throws<BootException>(() => Load(elf64, out _)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_bzImage_check_still_names_elf_files_that_are_not_multiboot()
    {
        var elf = MultibootElf.Elf(0x10_0000, [new MultibootElf.Segment(0x10_0000, [0xF4])]);
        Assert.False(MultibootLoader.IsMultiboot(elf));
        Assert.Contains("ELF", Assert.Throws<BootException>(() => SetupHeader.Parse(elf)).Message, StringComparison.Ordinal);
    }
}

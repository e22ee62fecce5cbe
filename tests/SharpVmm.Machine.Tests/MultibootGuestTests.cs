using System.Text;
using Iced.Intel;
using SharpVmm.Boot.Multiboot;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Machine.Tests;

/// <summary>
/// Multiboot test kernels of our own (kvm-unit-tests style: 32-bit ELF, report through memory, the serial port and
/// the debug-exit port) booted with <c>--kernel</c> on the emulator, on the same machine Linux gets.
/// </summary>
public sealed class MultibootGuestTests : IDisposable
{
    private const uint Results = 0x30_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-mb-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private VirtualMachine Build(string kernel, int cpus = 1, string? append = null, string? initrd = null, IReadOnlyList<DeviceSpec>? devices = null) =>
        VmBuilder.Build(new VmConfig
        {
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 64UL << 20,
            Cpus = cpus,
            Kernel = kernel,
            Append = append,
            Initrd = initrd,
            Serial = "file:" + Path.Combine(_dir, "serial.txt"),
            TestDevices = devices ?? [],
        });

    /// <summary>out dx, ax with the fw_cfg key, then <paramref name="n"/> bytes from the data port into [edi] (REP INSB).</summary>
    private static void FwCfgRead(Assembler a, ushort key, uint to, int n)
    {
        a.mov(dx, 0x510);
        a.mov(ax, key);
        a.@out(dx, ax);
        a.mov(dx, 0x511);
        a.mov(edi, to);
        a.mov(ecx, n);
        a.rep.insb();
    }

    /// <summary>Exit through the debug-exit port with a 32-bit OUT (kvm-unit-tests' exit()), then stop.</summary>
    private static void Exit32(Assembler a, uint code)
    {
        a.mov(eax, code);
        a.@out(0xF4, eax);
        a.cli();
        a.hlt();
    }

    [Fact]
    public void Loader_state_fw_cfg_and_a_32_bit_debug_exit_as_a_test_kernel_sees_them()
    {
        var kernel = Write("test.elf", MultibootElf.Kernel(a =>
        {
            a.mov(__dword_ptr[Results], eax);
            a.mov(__dword_ptr[Results + 4], ebx);
            foreach (int off in new[] { 0, 4, 8, 16, 20, 24, 44, 48 })
            {
                a.mov(ecx, __dword_ptr[ebx + off]);
                a.mov(__dword_ptr[Results + 8 + (uint)off], ecx);
            }
            a.pushfd();
            a.pop(__dword_ptr[Results + 0x60]);
            a.mov(eax, cr0);
            a.mov(__dword_ptr[Results + 0x64], eax);
            FwCfgRead(a, 0x00, Results + 0x80, 4);    // signature
            FwCfgRead(a, 0x05, Results + 0x84, 2);    // CPU count
            FwCfgRead(a, 0x03, Results + 0x88, 8);    // RAM size
            FwCfgRead(a, 0x77, Results + 0x90, 4);    // no such key
            FwCfgRead(a, 0x15, Results + 0xA0, 64);   // command line
            Exit32(a, 0x21);
        }, bss: 0x1000));
        string initrd = Write("mod.bin", [7, 6, 5, 4, 3]);
        using var vm = Build(kernel, cpus: 2, append: "hello=1", initrd: initrd);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.PowerOff, r.Reason);
        Assert.Equal(0x43, r.ExitCode);
        var m = vm.Memory;
        Assert.Equal(MultibootLoader.BootloaderMagic, m.Read<uint>(Results));
        Assert.Equal((uint)MultibootLoader.InfoAddress, m.Read<uint>(Results + 4));
        Assert.NotEqual(0u, m.Read<uint>(Results + 8) & 0x4D); // mem, cmdline, mods, mmap
        Assert.Equal(639u, m.Read<uint>(Results + 12));
        Assert.Equal(63u * 1024, m.Read<uint>(Results + 16));
        Assert.Equal(kernel + " hello=1", CString(vm, m.Read<uint>(Results + 8 + 16)));
        Assert.Equal(1u, m.Read<uint>(Results + 8 + 20));
        uint mods = m.Read<uint>(Results + 8 + 24);
        uint modStart = m.Read<uint>(mods), modEnd = m.Read<uint>(mods + 4);
        Assert.Equal(5u, modEnd - modStart);
        Assert.Equal(5, m.Read<byte>(modStart + 2));
        Assert.Equal(initrd, CString(vm, m.Read<uint>(mods + 8)));
        Assert.NotEqual(0u, m.Read<uint>(Results + 8 + 44));           // mmap_length
        Assert.Equal(0u, m.Read<uint>(Results + 0x60) & 0x200);        // IF off at entry
        Assert.Equal(0u, m.Read<uint>(Results + 0x64) & 0x8000_0000);  // paging off
        Assert.Equal(1u, m.Read<uint>(Results + 0x64) & 1);            // protected mode
        Assert.Equal("QEMU", Encoding.ASCII.GetString(BitConverter.GetBytes(m.Read<uint>(Results + 0x80))));
        Assert.Equal(2, m.Read<ushort>(Results + 0x84));
        Assert.Equal(64UL << 20, m.Read<ulong>(Results + 0x88));
        Assert.Equal(0u, m.Read<uint>(Results + 0x90));
        Assert.Equal(kernel + " hello=1", CString(vm, Results + 0xA0));
    }

    [Fact]
    public void The_bsp_starts_an_ap_with_init_and_sipi_and_the_ap_reports_in_real_mode()
    {
        const uint counter = 0x7000, apicIdSlot = 0x7004, trampoline = 0x8000;
        // The AP wakes in real mode at 0x8000 (SIPI vector 0x08): store its APIC ID, count itself in, stop.
        var ap = new Assembler(16);
        ap.xor(ax, ax);
        ap.mov(ds, ax);
        ap.mov(eax, 1);
        ap.cpuid();
        ap.shr(ebx, 24);
        ap.mov(__dword_ptr[apicIdSlot], ebx);        // before counting in: the BSP exits as soon as it sees the count
        ap.@lock.inc(__dword_ptr[counter]);
        ap.cli();
        ap.hlt();
        var apCode = MultibootElf.Assemble(ap, 0);
        var kernel = Write("smp.elf", MultibootElf.Kernel(a =>
        {
            var wait = a.CreateLabel();
            var timeout = a.CreateLabel();
            a.mov(__dword_ptr[counter], 0);
            a.mov(__dword_ptr[apicIdSlot], 0xFF);
            // Before INIT/SIPI the AP must not have run.
            a.mov(ecx, 100000);
            var spin = a.CreateLabel();
            a.Label(ref spin);
            a.pause();
            a.dec(ecx);
            a.jnz(spin);
            var early = a.CreateLabel();
            a.cmp(__dword_ptr[counter], 0);
            a.jne(early);
            a.mov(__dword_ptr[0xFEE0_0310], 1u << 24);  // ICR high: APIC ID 1
            a.mov(__dword_ptr[0xFEE0_0300], 0x4500);    // INIT, assert
            a.mov(__dword_ptr[0xFEE0_0300], 0x4600 | (trampoline >> 12)); // STARTUP, vector 0x08
            a.mov(ecx, 50_000_000);
            a.Label(ref wait);
            a.cmp(__dword_ptr[counter], 1);
            a.je(timeout);                              // (label reused: the AP reported)
            a.pause();
            a.dec(ecx);
            a.jnz(wait);
            a.Label(ref timeout);
            a.mov(eax, __dword_ptr[counter]);
            a.@out(0xF4, eax);
            a.cli();
            a.hlt();
            a.Label(ref early);
            Exit32(a, 0x40);                            // an AP ran before it was started
        }, extra: new MultibootElf.Segment(trampoline, apCode)));
        using var vm = Build(kernel, cpus: 2);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.PowerOff, r.Reason);
        Assert.Equal(3, r.ExitCode);                                    // (1 << 1) | 1: exactly one AP counted in
        Assert.Equal(1u, vm.Memory.Read<uint>(apicIdSlot));
    }

    [Fact]
    public void Pc_testdev_and_a_moved_debug_exit_port_answer_a_test_kernel()
    {
        var kernel = Write("testdev.elf", MultibootElf.Kernel(a =>
        {
            a.mov(eax, 0x1234_5678);
            a.@out(0xE0, eax);
            a.mov(al, 0xAB);
            a.@out(0xE9, al);                     // byte 1 through the byte-wise window
            a.@in(eax, 0xE0);
            a.mov(__dword_ptr[Results], eax);
            a.mov(dx, 0xCF8);
            a.mov(eax, 0x8000_0000);
            a.@out(dx, eax);
            a.@in(eax, dx);
            a.mov(__dword_ptr[Results + 4], eax);
            a.mov(dx, 0xCFC);
            a.@in(eax, dx);
            a.mov(__dword_ptr[Results + 8], eax);
            a.mov(eax, 5);
            a.mov(dx, 0x501);
            a.@out(dx, ax);
            a.cli();
            a.hlt();
        }));
        using var vm = Build(kernel, devices: [DeviceSpec.Parse("pc-testdev"), DeviceSpec.Parse("isa-debug-exit")]);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(11, r.ExitCode);
        Assert.Equal(0x1234_AB78u, vm.Memory.Read<uint>(Results));
        Assert.Equal(0x8000_0000u, vm.Memory.Read<uint>(Results + 4));
        Assert.Equal(0xFFFF_FFFFu, vm.Memory.Read<uint>(Results + 8));
    }

    [Fact]
    public void A_test_kernel_sees_the_cpu_features_and_uses_rdpid_and_xsave_in_protected_mode()
    {
        const uint area = 0x31_0000; // 64-byte aligned XSAVE area
        var kernel = Write("cpu.elf", MultibootElf.Kernel(a =>
        {
            a.mov(eax, 7); a.xor(ecx, ecx); a.cpuid();
            a.mov(__dword_ptr[Results], ebx);
            a.mov(__dword_ptr[Results + 4], ecx);
            a.mov(eax, 1); a.cpuid();
            a.mov(__dword_ptr[Results + 8], ecx);
            a.mov(ecx, 0xC0000103); a.mov(eax, 0x77); a.xor(edx, edx); a.wrmsr(); // TSC_AUX
            a.rdpid(eax);
            a.mov(__dword_ptr[Results + 12], eax);
            a.mov(eax, cr4);
            a.or(eax, (1 << 18) | (1 << 9));        // OSXSAVE, OSFXSR
            a.mov(cr4, eax);
            a.xor(ecx, ecx); a.xor(edx, edx); a.mov(eax, 3); a.xsetbv();
            a.mov(eax, 0xABCD);
            a.movd(xmm0, eax);
            a.mov(eax, 3); a.xor(edx, edx);
            a.xsave(__[area]);
            a.pxor(xmm0, xmm0);
            a.xrstor(__[area]);
            a.movd(__dword_ptr[Results + 16], xmm0);
            a.mov(eax, __dword_ptr[area + 512]);
            a.mov(__dword_ptr[Results + 20], eax);
            Exit32(a, 0x21);
        }));
        using var vm = Build(kernel);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(0x43, r.ExitCode);
        var m = vm.Memory;
        uint l7b = m.Read<uint>(Results), l7c = m.Read<uint>(Results + 4), l1c = m.Read<uint>(Results + 8);
        foreach (int bit in new[] { 7, 10, 23, 24 }) Assert.True((l7b & (1u << bit)) != 0, $"CPUID.7.EBX bit {bit} (SMEP, INVPCID, CLFLUSHOPT, CLWB)");
        foreach (int bit in new[] { 2, 22 }) Assert.True((l7c & (1u << bit)) != 0, $"CPUID.7.ECX bit {bit} (UMIP, RDPID)");
        foreach (int bit in new[] { 17, 24, 26 }) Assert.True((l1c & (1u << bit)) != 0, $"CPUID.1.ECX bit {bit} (PCID, TSC-deadline with the machine's LAPIC, XSAVE)");
        Assert.Equal(0x77u, m.Read<uint>(Results + 12));
        Assert.Equal(0xABCDu, m.Read<uint>(Results + 16));
        Assert.Equal(3u, m.Read<uint>(Results + 20));
    }

    [Fact]
    public void A_multiboot_kernel_that_overlaps_the_loader_area_is_refused_before_the_vm_runs()
    {
        var kernel = Write("low.elf", MultibootElf.Kernel(a => a.hlt(), loadAddress: 0x9_0000));
        var ex = Assert.ThrowsAny<Core.VmmException>(() =>
        {
            using var vm = Build(kernel);
            GuestHarness.RunToEnd(vm);
        });
        Assert.Contains("overlaps the loader's area", ex.Message, StringComparison.Ordinal);
    }

    private static string CString(VirtualMachine vm, ulong a)
    {
        var sb = new StringBuilder();
        for (byte b; (b = vm.Memory.Read<byte>(a)) != 0 && sb.Length < 4096; a++) sb.Append((char)b);
        return sb.ToString();
    }
}

using System.Buffers.Binary;
using System.Diagnostics;
using SharpVmm.Boot.Acpi;
using SharpVmm.Boot.Linux;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;
using Xunit.Abstractions;

namespace SharpVmm.Boot.Tests.Linux;

/// <summary>
/// The whole boot path against a real Linux, with QEMU as the CPU: LinuxLoader and AcpiTables fill a GuestMemory,
/// the interesting ranges are handed to QEMU's generic loader device, and a 16-bit trampoline replays the returned
/// VcpuState (GDT, CR3, CR4, EFER, CR0, CS, data segments, RSI, RSP, RIP) before jumping to the kernel. The Debian
/// kernel then runs on our zero page, e820 map, command line, initrd and ACPI tables alone, and its "poweroff -f"
/// reaches the FADT's SLEEP_CONTROL_REG, where an isa-debug-exit device turns the S5 write into QEMU's exit status.
/// </summary>
public sealed class QemuBootTests(ITestOutputHelper output)
{
    private const ulong MiB = 1 << 20;
    private const ushort SleepPort = 0xF4;              // isa-debug-exit's default port
    private const int PowerOffExitStatus = (0x34 << 1) | 1; // isa-debug-exit: (value << 1) | 1, value = SLP_TYP 5 | SLP_EN
    private const string CommandLine = "console=ttyS0 earlyprintk=serial,ttyS0 pci=off tsc_early_khz=2000000";

    [NeedsTheory(Need.LinuxGuest, Need.QemuSystem, Need.Busybox)]
    [InlineData(256, 2)]
    [InlineData(4096, 1)]   // RAM split around the MMIO hole: 3 GiB low, 1 GiB above 4 GiB (QEMU "pc" does the same)
    public void The_Debian_kernel_boots_on_our_tables_and_powers_off_through_the_FADT(int memoryMiB, int cpus)
    {
        using var dir = new TempDir();
        using var memory = GuestMemory.Create((ulong)memoryMiB * MiB);

        // ACPI tables at the top of RAM: QEMU's BIOS ROM occupies 0xE0000-0xFFFFF, so the kernel gets the RSDP from
        // the zero page and the table range is marked ACPI in the e820 map.
        // Two virtio-mmio transports that QEMU's "pc" machine does not have: the kernel must still list them as ACPI
        // platform devices and, when the modules are at hand, virtio_mmio must bind to them and read our window.
        var acpiSpec = new AcpiSpec
        {
            CpuCount = cpus,
            SleepPort = SleepPort,
            VirtioMmioDevices = [new VirtioMmioDeviceSpec(0xD000_0000, 5), new VirtioMmioDeviceSpec(0xD000_0200, 6, LevelTriggered: true)],
        };
        ulong acpiBase = memory.Regions[0].GuestEnd - MiB;
        ulong rsdp = AcpiTables.Build(acpiSpec, memory, acpiBase, out ulong acpiLength);

        var busybox = System.IO.File.ReadAllBytes(QemuBoot.Busybox()!);
        var cpio = new TinyInitramfs()
            .Directory("dev").CharDevice("dev/console", 5, 1).Directory("sys")
            .Directory("bin").File("bin/busybox", busybox, executable: true);
        var modules = VirtioModules();
        foreach (var (name, bytes) in modules) cpio.File(name + ".ko", bytes, executable: false);
        var initrd = cpio.File("init", """
            #!/bin/busybox sh
            B=/bin/busybox
            $B echo SHARPVMM-INIT-RAN
            $B mount -t sysfs sysfs /sys
            $B echo PLATFORM-DEVICES: $($B ls /sys/bus/platform/devices)
            for m in virtio_ring virtio virtio_mmio; do [ -f /$m.ko ] && $B insmod /$m.ko; done
            $B poweroff -f

            """u8.ToArray(), executable: true).Finish();

        var state = LinuxLoader.Load(memory, new LinuxBootSpec
        {
            Kernel = System.IO.File.ReadAllBytes(GuestFiles.KernelIfPresent!),
            Initrd = initrd,
            // tsc_early_khz: on a hardware-reduced platform Linux registers no PIT clockevent, so when the PIT-based TSC
            // calibration fails (it does when this 2-core host is busy) nothing makes jiffies tick and the LAPIC timer
            // calibration spins forever. Telling the kernel the TSC rate skips both loops; SharpVmm's own guests get
            // it from kvm-clock instead. pci=off: no BIOS ran, so QEMU's PCI devices are unconfigured.
            CommandLine = CommandLine,
            AcpiRsdp = rsdp,
            AcpiTablesBase = acpiBase,
            AcpiTablesLength = acpiLength,
        }, out var layout);

        var args = new List<string>
        {
            "-accel", "tcg", "-M", "pc", "-m", memoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture), "-smp", cpus.ToString(System.Globalization.CultureInfo.InvariantCulture), "-nodefaults", "-display", "none", "-no-reboot",
            "-serial", "stdio", "-device", $"isa-debug-exit,iobase=0x{SleepPort:x},iosize=1",
        };
        void Range(string name, ulong address, ulong length)
        {
            var bytes = new byte[length];
            memory.Read(address, bytes);
            System.IO.File.WriteAllBytes(dir.File(name), bytes);
            args.Add("-device");
            args.Add($"loader,file={dir.File(name)},addr=0x{address:x},force-raw=on");
        }
        Range("low.bin", LowMemoryLayout.LoaderAreaStart, LowMemoryLayout.EbdaStart - LowMemoryLayout.LoaderAreaStart);
        Range("kernel.bin", layout.KernelAddress, layout.KernelSize);
        Range("initrd.bin", layout.InitrdAddress, layout.InitrdSize);
        Range("acpi.bin", acpiBase, acpiLength);
        System.IO.File.WriteAllBytes(dir.File("trampoline.bin"), Trampoline(state, 0x1000));
        args.Add("-device");
        args.Add($"loader,file={dir.File("trampoline.bin")},addr=0x1000,cpu-num=0,force-raw=on");

        var (exit, console, elapsed) = RunQemu(args, TimeSpan.FromSeconds(100));
        output.WriteLine($"QEMU exit status {exit} after {elapsed.TotalSeconds:F1} s");
        output.WriteLine(console);

        Assert.Contains($"ACPI: RSDP 0x{acpiBase:X16}", console);
        Assert.Contains("SHRPVM", console);
        Assert.Contains("ACPI: Using IOAPIC for interrupt routing", console);
        Assert.Contains("ACPI: PM: (supports S0 S5)", console);
        Assert.Contains($"smp: Brought up 1 node, {cpus} CPU", console); // further CPUs found in the MADT, started by SIPI
        if (memoryMiB > 3072)
            Assert.Contains("BIOS-e820: [mem 0x0000000100000000-0x000000013fffffff] usable", console);
        Assert.Contains("ttyS0 at I/O 0x3f8", console);
        Assert.DoesNotContain("ACPI Error", console);
        Assert.DoesNotContain("ACPI BIOS Error", console);
        Assert.DoesNotContain("ACPI Warning", console);
        Assert.Contains("ACPI: PM: Preparing to enter system sleep state S5", console);
        Assert.Contains("Command line: " + CommandLine, console);
        Assert.Contains("SHARPVMM-INIT-RAN", console);   // the initrd was found and unpacked
        Assert.Matches(@"PLATFORM-DEVICES:.* LNRO0005:00 .*LNRO0005:01", console);
        if (modules.Count == 3)
        {
            // virtio_mmio matched our _HID, mapped our Memory32Fixed window and found no device behind it.
            Assert.Contains("virtio-mmio LNRO0005:00: Wrong magic value", console);
            Assert.Contains("virtio-mmio LNRO0005:01: Wrong magic value", console);
        }
        else output.WriteLine("virtio modules not found beside the kernel: the driver-binding check was skipped");
        Assert.Equal(PowerOffExitStatus, exit);
    }

    /// <summary>virtio_ring, virtio and virtio_mmio from the guest directory's modules/kernel/drivers/virtio, if there.</summary>
    private static List<(string Name, byte[] Bytes)> VirtioModules()
    {
        var list = new List<(string, byte[])>();
        string dir = Path.Combine(Path.GetDirectoryName(GuestFiles.KernelIfPresent!)!, "modules", "kernel", "drivers", "virtio");
        foreach (var name in new[] { "virtio_ring", "virtio", "virtio_mmio" })
        {
            string path = Path.Combine(dir, name + ".ko");
            if (System.IO.File.Exists(path)) list.Add((name, System.IO.File.ReadAllBytes(path)));
        }
        return list;
    }

    /// <summary>
    /// Real mode (CS = 0, IP = <paramref name="origin"/>) straight to long mode: LGDT, CR4, CR3, EFER, then CR0 with PE
    /// and PG together, a far jump to the 64-bit code selector, data selectors, RSI, RSP, and a jump to RIP.
    /// </summary>
    internal static byte[] Trampoline(VcpuState s, ushort origin)
    {
        var b = new List<byte>();
        void U16(ulong v) { b.Add((byte)v); b.Add((byte)(v >> 8)); }
        void U32(ulong v) { U16(v & 0xFFFF); U16(v >> 16); }
        void U64(ulong v) { U32(v & 0xFFFF_FFFF); U32(v >> 32); }

        b.AddRange([0xFA, 0x31, 0xC0, 0x8E, 0xD8]);                     // cli; xor ax,ax; mov ds,ax
        b.AddRange([0x66, 0x0F, 0x01, 0x16]); int gdtrFixup = b.Count; U16(0); // o32 lgdt [gdtr]
        b.AddRange([0x66, 0xB8]); U32(s.Cr4); b.AddRange([0x0F, 0x22, 0xE0]); // mov eax, cr4 value; mov cr4, eax
        b.AddRange([0x66, 0xB8]); U32(s.Cr3); b.AddRange([0x0F, 0x22, 0xD8]); // mov cr3, eax
        b.AddRange([0x66, 0xB9]); U32(0xC000_0080);                       // mov ecx, IA32_EFER
        b.AddRange([0x66, 0xB8]); U32(s.Efer & ~ControlBits.EferLma);      // LMA is the CPU's to set
        b.AddRange([0x66, 0x31, 0xD2, 0x0F, 0x30]);                       // xor edx, edx; wrmsr
        b.AddRange([0x66, 0xB8]); U32(s.Cr0); b.AddRange([0x0F, 0x22, 0xC0]); // mov cr0, eax
        b.AddRange([0x66, 0xEA]); int farFixup = b.Count; U32(0); U16(s.Cs.Selector); // jmp far sel:long
        int gdtr = b.Count; U16(s.Gdt.Limit); U32(s.Gdt.Base);
        int longEntry = b.Count;
        b.AddRange([0xB8]); U32(s.Ds.Selector);                           // mov eax, data selector
        b.AddRange([0x8E, 0xD8, 0x8E, 0xC0, 0x8E, 0xD0, 0x8E, 0xE0, 0x8E, 0xE8]); // ds, es, ss, fs, gs
        b.AddRange([0x48, 0xBE]); U64(s[Gpr.Rsi]);
        b.AddRange([0x48, 0xBC]); U64(s[Gpr.Rsp]);
        b.AddRange([0x48, 0xB8]); U64(s.Rip);
        b.AddRange([0xFF, 0xE0]);                                         // jmp rax

        var code = b.ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(code.AsSpan(gdtrFixup), (ushort)(origin + gdtr));
        BinaryPrimitives.WriteUInt32LittleEndian(code.AsSpan(farFixup), (uint)(origin + longEntry));
        return code;
    }

    [Fact]
    public void The_trampoline_decodes_as_intended()
    {
        var s = EntryState.Long(new DescriptorTable { Base = 0x8_0000, Limit = 0x2F }, 0x8_1000, 0x10_0200, 0x9_F000);
        s[Gpr.Rsi] = 0x9_3000;
        var code = Trampoline(s, 0x1000);
        int split = Array.IndexOf(code, (byte)0xEA) + 1 + 6 + 6; // far jump operands, then the 6-byte GDTR
        var real = Decode(16, code[..(split - 6)], 0x1000);
        Assert.Equal(Iced.Intel.Mnemonic.Lgdt, real[3].Mnemonic);
        Assert.Equal(Iced.Intel.Mnemonic.Wrmsr, real[^4].Mnemonic);
        Assert.Equal(Iced.Intel.Code.Jmp_ptr1632, real[^1].Code);
        Assert.Equal((ushort)0x10, real[^1].FarBranchSelector);
        Assert.Equal(0x1000u + (uint)split, real[^1].FarBranch32);
        var longMode = Decode(64, code[split..], 0x1000 + (ulong)split);
        Assert.Equal(Iced.Intel.Mnemonic.Jmp, longMode[^1].Mnemonic);
        Assert.Equal(0x10_0200UL, longMode[^2].GetImmediate(1));
    }

    private static List<Iced.Intel.Instruction> Decode(int bitness, byte[] code, ulong ip)
    {
        var d = Iced.Intel.Decoder.Create(bitness, code, ip);
        var list = new List<Iced.Intel.Instruction>();
        while (d.IP < ip + (ulong)code.Length)
        {
            var i = d.Decode();
            Assert.False(i.IsInvalid, $"invalid instruction at 0x{i.IP:x}");
            list.Add(i);
        }
        return list;
    }

    private static (int Exit, string Console, TimeSpan Elapsed) RunQemu(List<string> args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("qemu-system-x86_64") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return (-1, stdout.Result + stderr.Result + $"\n[killed after {timeout.TotalSeconds} s]", sw.Elapsed);
        }
        return (p.ExitCode, stdout.Result + stderr.Result, sw.Elapsed);
    }
}

internal static class QemuBoot
{

    /// <summary>A statically linked busybox: the guest directory's copy, else the host's if it has no ELF interpreter.</summary>
    public static string? Busybox()
    {
        var candidates = new List<string>();
        if (GuestFiles.KernelIfPresent is { } k) candidates.Add(Path.Combine(Path.GetDirectoryName(k)!, "busybox"));
        candidates.Add("/bin/busybox");
        candidates.Add("/usr/bin/busybox");
        foreach (var c in candidates)
            if (File.Exists(c) && IsStaticElf(c)) return c;
        return null;
    }

    private static bool IsStaticElf(string path)
    {
        var f = File.ReadAllBytes(path);
        if (f.Length < 64 || f[0] != 0x7F || f[1] != 'E' || f[2] != 'L' || f[3] != 'F' || f[4] != 2) return false;
        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(0x20));
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(0x36));
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(0x38));
        for (int i = 0; i < phnum; i++)
        {
            ulong o = phoff + (ulong)(i * phentsize);
            if (o + 4 > (ulong)f.Length) return false;
            if (BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan((int)o)) == 3) return false; // PT_INTERP
        }
        return true;
    }
}

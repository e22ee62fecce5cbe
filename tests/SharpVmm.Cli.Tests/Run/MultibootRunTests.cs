using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Cli.Tests.Run;

/// <summary><c>sharpvmm run --kernel test.elf</c> as QEMU runs a kvm-unit-tests kernel: Multiboot, exit code through debug-exit.</summary>
public sealed class MultibootRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-mbrun-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A kernel that prints "ok" on COM1 and exits with a 32-bit OUT of 0x21 to <paramref name="port"/>.</summary>
    private string Kernel(ushort port)
    {
        string path = Path.Combine(_dir, "test.elf");
        File.WriteAllBytes(path, MultibootElf.Kernel(a =>
        {
            a.mov(dx, 0x3F8);
            a.mov(al, (byte)'o');
            a.@out(dx, al);
            a.mov(al, (byte)'k');
            a.@out(dx, al);
            a.mov(dx, port);
            a.mov(eax, 0x21);
            a.@out(dx, eax);
            a.cli();
            a.hlt();
        }));
        return path;
    }

    [Fact]
    public void A_multiboot_elf_kernel_runs_and_its_32_bit_debug_exit_is_the_exit_code()
    {
        string serial = Path.Combine(_dir, "serial.txt");
        int code = Program.Main(["run", "--accel", "emu", "--memory", "64M", "--kernel", Kernel(0xF4), "--serial", "file:" + serial]);
        Assert.Equal(0x43, code);
        Assert.Equal("ok", File.ReadAllText(serial));
    }

    [Fact]
    public void Isa_debug_exit_with_kvm_unit_tests_options_is_honoured()
    {
        string serial = Path.Combine(_dir, "serial.txt");
        int code = Program.Main(["run", "--accel", "emu", "--memory", "64M", "--kernel", Kernel(0x501), "--serial", "file:" + serial,
            "--device", "pc-testdev", "--device", "isa-debug-exit,iobase=0x501,iosize=4"]);
        Assert.Equal(0x43, code);
    }

    [Fact]
    public void An_unknown_device_is_refused()
    {
        int code = Program.Main(["run", "--accel", "emu", "--kernel", Kernel(0xF4), "--device", "e1000"]);
        Assert.NotEqual(0, code);
        Assert.NotEqual(0x43, code);
    }

    [Fact]
    public void The_qemu_personality_runs_a_test_kernel_as_qemu_does()
    {
        // What kvm-unit-tests' runner passes QEMU, on the machine type SharpVmm's personality has.
        string serial = Path.Combine(_dir, "serial.txt");
        int code = Program.Main(["qemu-system-x86_64", "-nodefaults", "-M", "microvm", "-accel", "tcg", "-m", "64", "-smp", "1",
            "-device", "pc-testdev", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-display", "none",
            "-serial", "file:" + serial, "-kernel", Kernel(0xF4)]);
        Assert.Equal(0x43, code);
        Assert.Equal("ok", File.ReadAllText(serial));
    }
}

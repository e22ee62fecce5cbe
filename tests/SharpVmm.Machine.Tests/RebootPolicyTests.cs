using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Machine.Tests;

/// <summary>What a guest's reset request does: restart it, or end the run under --no-reboot (QEMU's -no-reboot).</summary>
public sealed class RebootPolicyTests : IDisposable
{
    private const uint Counter = 0x9000;
    private readonly GuestHarness _harness = new();

    public void Dispose() => _harness.Dispose();

    /// <summary>Counts its starts in RAM (which survives a reset), pulses the i8042 reset line, then triple-faults at once.</summary>
    private VirtualMachine Build(AcceleratorKind accel, bool noReboot)
    {
        var a = new Assembler(32);
        a.inc(__dword_ptr[Counter]);
        a.mov(al, 0xFE);
        a.@out((byte)0x64, al);
        // A guest that carries on after asking for the reset, as Linux does (its last method is a triple fault).
        a.lidt(__fword_ptr[0x2000]); // fresh RAM is zero: an IDT with limit 0
        a.ud2();
        string bin = Path.Combine(Path.GetDirectoryName(_harness.SerialPath)!, "reboot.bin");
        File.WriteAllBytes(bin, GuestHarness.Assemble(a, EntryMode.Protected, 0x1000));
        return VmBuilder.Build(new VmConfig
        {
            Accelerator = accel,
            MemoryBytes = 16UL << 20,
            Flat = new FlatImageSpec(bin, 0x1000, EntryMode.Protected),
            Serial = "none",
            NoReboot = noReboot,
        });
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public async Task A_reset_request_restarts_the_guest_which_never_reaches_the_triple_fault_after_it(AcceleratorKind accel)
    {
        using var vm = Build(accel, noReboot: false);
        vm.Start();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (vm.Memory.Read<uint>(Counter) < 5 && !vm.Exited.IsCompleted && DateTime.UtcNow < deadline) Thread.Sleep(5);
        vm.Stop();
        var r = await vm.Exited;
        Assert.True(r.Reason == VmStopReason.HostRequest, $"the VM ended by itself: {r.Message}");
        Assert.True(vm.Memory.Read<uint>(Counter) >= 5, $"the guest started only {vm.Memory.Read<uint>(Counter)} times");
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void Under_no_reboot_a_reset_request_ends_the_run_with_exit_code_0(AcceleratorKind accel)
    {
        using var vm = Build(accel, noReboot: true);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.GuestReset, r.Reason);
        Assert.Equal(0, r.ExitCode);
        Assert.False(r.IsError);
        Assert.Equal(1u, vm.Memory.Read<uint>(Counter));
    }

    [Fact]
    public void Linux_is_told_to_reboot_through_the_FADT_reset_register_unless_the_user_chose()
    {
        Assert.Equal("console=ttyS0 reboot=acpi", VmBuilder.KernelCommandLine(new VmConfig(), null));
        Assert.Equal("console=ttyS0 reboot=k", VmBuilder.KernelCommandLine(new VmConfig { Append = "console=ttyS0 reboot=k" }, null));
        Assert.StartsWith("console=ttyS0 reboot=acpi tsc_early_khz=", VmBuilder.KernelCommandLine(new VmConfig(), new Core.Time.GuestClock()));
    }
}

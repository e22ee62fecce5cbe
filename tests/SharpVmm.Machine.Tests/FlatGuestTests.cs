using System.Collections.Concurrent;
using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Io;
using SharpVmm.Devices.Bus;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Machine.Tests;

/// <summary>Whole VMs running guests assembled here, on KVM (where the host has it) and on emu.</summary>
public sealed class FlatGuestTests
{
    private const ushort TestPort = 0x510;
    private const byte DebugExit = 0xF4;

    private sealed class PortDevice : IIoDevice
    {
        public readonly ConcurrentQueue<(ulong Offset, ulong Value)> Writes = new();
        public ulong ReadValue = 0x1234_5678;
        public void Read(ulong offset, Span<byte> data) => BitConverter.GetBytes(ReadValue).AsSpan(0, data.Length).CopyTo(data);
        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            Span<byte> v = stackalloc byte[8];
            data.CopyTo(v);
            Writes.Enqueue((offset, BitConverter.ToUInt64(v)));
        }
    }

    private sealed class ThrowingDevice : IIoDevice
    {
        public void Read(ulong offset, Span<byte> data) => throw new InvalidOperationException("simulated device bug");
        public void Write(ulong offset, ReadOnlySpan<byte> data) => throw new InvalidOperationException("simulated device bug");
    }

    private static void ExitWith(Assembler a, byte code)
    {
        a.mov(al, code);
        a.@out(DebugExit, al);
        a.cli();
        a.hlt();
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void Port_in_returns_the_device_data_to_the_guest(AcceleratorKind accel)
    {
        var a = new Assembler(16);
        a.mov(dx, TestPort);
        a.@in(al, dx);        // device answers 0x78 in the low byte
        a.@out(DebugExit, al); // exit code (0x78 << 1) | 1
        a.cli(); a.hlt();
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Real, 0x1000), EntryMode.Real, accel: accel);
        vm.Bus.RegisterPort(TestPort, 4, new PortDevice(), "test");
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal((0x78 << 1) | 1, r.ExitCode);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void Mmio_reads_and_writes_round_trip_through_a_device(AcceleratorKind accel)
    {
        const uint mmio = 0xD000_0000; // inside the 32-bit hole: not RAM, so every access exits to the bus
        var a = new Assembler(32);
        a.mov(eax, __dword_ptr[mmio]);
        a.add(eax, 1);
        a.mov(__dword_ptr[mmio + 8], eax);
        ExitWith(a, 0x11);
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Protected, 0x1000), EntryMode.Protected, accel: accel);
        var dev = new PortDevice { ReadValue = 41 };
        vm.Bus.RegisterMmio(mmio, 0x100, dev, "test-mmio");
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(0x23, r.ExitCode);
        Assert.Contains((8UL, 42UL), dev.Writes);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void Hlt_with_interrupts_off_ends_the_run(AcceleratorKind accel)
    {
        var a = new Assembler(16);
        a.cli();
        a.hlt();
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Real, 0x1000), EntryMode.Real, accel: accel);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.Halted, r.Reason);
        Assert.Equal(0, r.ExitCode);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void Hlt_with_interrupts_on_but_no_interrupt_controller_ends_the_run_and_says_so(AcceleratorKind accel)
    {
        var a = new Assembler(16);
        a.sti();
        a.hlt();
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Real, 0x1000), EntryMode.Real, accel: accel);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.Halted, r.Reason);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("interrupts enabled", r.Message, StringComparison.Ordinal);
        Assert.Contains("no interrupt controller", r.Message, StringComparison.Ordinal);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void Hlt_with_interrupts_off_says_interrupts_disabled(AcceleratorKind accel)
    {
        var a = new Assembler(16);
        a.cli();
        a.hlt();
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Real, 0x1000), EntryMode.Real, accel: accel);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal("all vCPUs halted with interrupts disabled", r.Message);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void Two_vcpus_run_at_once_and_each_reports_its_apic_id(AcceleratorKind accel)
    {
        // Both vCPUs start at the entry point; CPUID.1:EBX[31:24] tells them apart.
        var a = new Assembler(32);
        a.mov(eax, 1);
        a.cpuid();
        a.shr(ebx, 24);
        a.mov(eax, ebx);
        a.mov(dx, TestPort);
        a.@out(dx, eax);
        a.cli();
        a.hlt();
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Protected, 0x1000), EntryMode.Protected, accel: accel, cpus: 2);
        var dev = new PortDevice();
        vm.Bus.RegisterPort(TestPort, 4, dev, "test");
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.Halted, r.Reason);
        Assert.Equal([0UL, 1UL], dev.Writes.Select(w => w.Value).Order().ToArray());
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public async Task A_paused_guest_does_not_advance_and_a_resumed_one_does(AcceleratorKind accel)
    {
        const ulong counter = 0x8000;
        var a = new Assembler(64);
        var loop = a.CreateLabel();
        a.mov(rbx, counter);
        a.Label(ref loop);
        a.inc(__qword_ptr[rbx]);
        a.jmp(loop);
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Long, 0x100000), EntryMode.Long, address: 0x100000, accel: accel);
        vm.Start();
        WaitUntil(() => vm.Memory.Read<ulong>(counter) > 100);
        vm.Pause();
        Assert.Equal(VmState.Paused, vm.State);
        ulong c1 = vm.Memory.Read<ulong>(counter);
        Thread.Sleep(300);
        ulong c2 = vm.Memory.Read<ulong>(counter);
        Assert.Equal(c1, c2);
        var state = vm.GetVcpuState(0);
        Assert.Equal(counter, state[Gpr.Rbx]);
        vm.Resume();
        WaitUntil(() => vm.Memory.Read<ulong>(counter) > c2 + 100);
        vm.Stop();
        Assert.Equal(VmStopReason.HostRequest, (await vm.Exited).Reason);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void Registers_set_before_the_run_are_used_and_read_back_after_it(AcceleratorKind accel)
    {
        var a = new Assembler(64);
        a.mov(rax, rbx);
        a.add(rax, rcx);
        a.imul(rdx, rax, 3);
        a.mov(r15, 0x1122_3344_5566_7788);
        a.cli();
        a.hlt();
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Long, 0x100000), EntryMode.Long, address: 0x100000, accel: accel);
        var s = vm.GetVcpuState(0);
        s[Gpr.Rbx] = 0x1_0000_0000;
        s[Gpr.Rcx] = 0x2345;
        vm.SetVcpuState(0, s);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.Halted, r.Reason);
        var after = vm.GetVcpuState(0);
        Assert.Equal(0x1_0000_2345UL, after[Gpr.Rax]);
        Assert.Equal(0x3_0000_69CFUL, after[Gpr.Rdx]);
        Assert.Equal(0x1122_3344_5566_7788UL, after[Gpr.R15]);
        Assert.Equal(0x100000UL + (ulong)GuestHarness.Assemble(a, EntryMode.Long, 0x100000).Length, after.Rip);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void An_access_outside_RAM_reads_all_ones_under_the_default_policy(AcceleratorKind accel)
    {
        var a = new Assembler(32);
        a.mov(eax, __dword_ptr[0x2000_0000]); // 512 MiB: past the 64 MiB of RAM, below the hole
        a.@out(DebugExit, al);
        a.cli(); a.hlt();
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Protected, 0x1000), EntryMode.Protected, accel: accel);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(0x1FF, r.ExitCode);
        Assert.Equal(1, vm.Bus.UnmappedAccessCount);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void An_access_outside_RAM_stops_the_vm_with_the_address_under_the_strict_policy(AcceleratorKind accel)
    {
        var a = new Assembler(32);
        a.mov(__dword_ptr[0x2000_0000], eax);
        ExitWith(a, 0x01);
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Protected, 0x1000), EntryMode.Protected, accel: accel, unmapped: UnmappedAccessPolicy.Stop);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal(VmStopReason.DeviceError, r.Reason);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("0x20000000", r.Message);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void A_failing_device_stops_the_vm_with_an_error_and_the_vmm_carries_on(AcceleratorKind accel)
    {
        var a = new Assembler(16);
        a.mov(dx, TestPort);
        a.@in(al, dx);
        ExitWith(a, 0x01);
        using var h = new GuestHarness();
        using (var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Real, 0x1000), EntryMode.Real, accel: accel))
        {
            vm.Bus.RegisterPort(TestPort, 1, new ThrowingDevice(), "broken-device");
            var r = GuestHarness.RunToEnd(vm);
            Assert.Equal(VmStopReason.DeviceError, r.Reason);
            Assert.Contains("broken-device", r.Message);
        }
        // The process is intact: another VM runs fine right after.
        var b = new Assembler(16);
        ExitWith(b, 0x05);
        using var vm2 = h.Build(GuestHarness.Assemble(b, EntryMode.Real, 0x1000), EntryMode.Real, accel: accel);
        Assert.Equal(0x0B, GuestHarness.RunToEnd(vm2).ExitCode);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void A_triple_fault_stops_the_vm_with_exit_code_2(AcceleratorKind accel)
    {
        var a = new Assembler(32);
        a.lidt(__fword_ptr[0x2000]); // fresh RAM is zero: an IDT with limit 0
        a.ud2(); // no IDT entry for #UD: #GP, no handler for that either: #DF, then shutdown
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Protected, 0x1000), EntryMode.Protected, accel: accel);
        var r = GuestHarness.RunToEnd(vm);
        Assert.True(r.Reason == VmStopReason.TripleFault, r.Message);
        Assert.Equal(2, r.ExitCode);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void I8042_reset_restarts_the_guest_from_its_entry_point(AcceleratorKind accel)
    {
        // RAM survives a reset (only the payload is reloaded), so a counter there tells how often the guest started.
        const uint counter = 0x9000;
        var a = new Assembler(32);
        var again = a.CreateLabel();
        a.inc(__dword_ptr[counter]);
        a.cmp(__dword_ptr[counter], 3);
        a.jb(again);
        a.mov(eax, __dword_ptr[counter]);
        a.@out(DebugExit, al);
        a.cli(); a.hlt();
        a.Label(ref again);
        a.mov(al, 0xFE);
        a.@out((byte)0x64, al);
        a.cli(); a.hlt();
        using var h = new GuestHarness();
        using var vm = h.Build(GuestHarness.Assemble(a, EntryMode.Protected, 0x1000), EntryMode.Protected, accel: accel);
        var r = GuestHarness.RunToEnd(vm);
        Assert.Equal((3 << 1) | 1, r.ExitCode);
    }

    private static void WaitUntil(Func<bool> condition, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("condition not reached in time");
            Thread.Sleep(10);
        }
    }
}

using SharpVmm.Core.Cpu;
using SharpVmm.Interop;
using SharpVmm.Kvm.Interop;
using SharpVmm.Kvm.Tests.Support;
using SharpVmm.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Kvm.Tests;

/// <summary>Opening KVM, capabilities, memory slots, dirty logs and the in-kernel irqchip.</summary>
public sealed class VmTests
{
    [Fact]
    public void A_missing_device_is_a_NoDevice_error_that_says_what_to_do()
    {
        var e = Assert.Throws<KvmException>(() => KvmSystem.Open("/nonexistent/kvm"));
        Assert.Equal(KvmErrorKind.NoDevice, e.Kind);
        Assert.Contains("emu accelerator", e.Message);
        Assert.IsAssignableFrom<SharpVmm.Core.VmmException>(e);
    }

    [Fact]
    public void A_device_that_is_not_kvm_is_refused()
    {
        var e = Assert.Throws<KvmException>(() => KvmSystem.Open("/dev/null"));
        Assert.Equal(KvmErrorKind.IoctlFailed, e.Kind);
        Assert.Contains("KVM_GET_API_VERSION", e.Message);
    }

    [Fact]
    public void Open_errors_map_errno_to_a_kind_with_advice()
    {
        var denied = KvmSystem.OpenError("/dev/kvm", Libc.EACCES);
        Assert.Equal(KvmErrorKind.NoPermission, denied.Kind);
        Assert.Contains("kvm' group", denied.Message);
        Assert.Equal(KvmErrorKind.NoPermission, KvmSystem.OpenError("/dev/kvm", Libc.EPERM).Kind);
        Assert.Equal(KvmErrorKind.NoDevice, KvmSystem.OpenError("/dev/kvm", Libc.ENOENT).Kind);
        var mismatch = KvmSystem.CheckApiVersion("/dev/kvm", 11);
        Assert.Equal(KvmErrorKind.ApiMismatch, mismatch!.Kind);
        Assert.Contains("version 11", mismatch.Message);
        Assert.Null(KvmSystem.CheckApiVersion("/dev/kvm", 12));
    }

    [KvmFact]
    public void The_api_version_is_12_and_capabilities_answer()
    {
        using var kvm = KvmSystem.Open();
        Assert.Equal(12, kvm.ApiVersion);
        Assert.True(kvm.VcpuMmapSize >= 2352);
        Assert.True(kvm.HasCapability(KvmCap.UserMemory));
        var e = Assert.Throws<KvmException>(() => kvm.RequireCapability((KvmCap)99999, "a test"));
        Assert.Equal(KvmErrorKind.MissingCapability, e.Kind);
        Assert.Contains("a test", e.Message);
        Assert.NotEmpty(kvm.GetSupportedCpuid());
        Assert.Contains(0xC000_0082u, kvm.GetMsrIndexList()); // LSTAR
    }

    [KvmFact]
    public void Bad_vcpu_indexes_and_counts_are_refused()
    {
        using var memory = GuestMemory.Create([(0UL, 0x1_0000UL)]);
        var bus = new RecordingBus();
        Assert.Equal(KvmErrorKind.InvalidArgument,
            Assert.Throws<KvmException>(() => KvmAccelerator.Create(memory, bus, new KvmOptions { VcpuCount = 0 })).Kind);
        using var acc = KvmAccelerator.Create(memory, bus, new KvmOptions { VcpuCount = 1 });
        Assert.Equal("kvm", acc.Name);
        Assert.Throws<KvmException>(() => acc.CreateVcpu(1));
        Assert.Throws<KvmException>(() => acc.CreateVcpu(-1));
        using var v = acc.CreateVcpu(0);
        Assert.Throws<KvmException>(() => acc.CreateVcpu(0));
    }

    [Fact]
    public void Ram_over_the_tss_pages_is_refused_before_kvm_is_opened()
    {
        using var memory = GuestMemory.Create([(0UL, 0x1_0000UL)]);
        var e = Assert.Throws<KvmException>(() => KvmAccelerator.Create(memory, new RecordingBus(), new KvmOptions { TssAddress = 0x8000, DevicePath = "/nonexistent/kvm" }));
        Assert.Equal(KvmErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("TssAddress", e.Message);
    }

    [KvmFact]
    public void Without_irqchip_there_is_no_router_and_SetIrq_says_why()
    {
        using var g = new KvmTestGuest();
        Assert.Null(g.Accelerator.IrqRouter);
        var e = Assert.Throws<KvmException>(() => g.Accelerator.SetIrq(4, true));
        Assert.Contains("IrqChip", e.Message);
    }

    [KvmFact]
    public void With_irqchip_an_irq_line_wakes_a_halted_guest_through_the_in_kernel_pic()
    {
        using var g = new KvmTestGuest(new KvmOptions { IrqChip = true });
        Assert.Same(g.Accelerator, g.Accelerator.IrqRouter);
        // IVT entry 0x24 (IRQ 4 once the master PIC's base is 0x20) -> handler at 0:0x1800.
        g.Memory.Write<uint>(0x24 * 4, 0x1800);
        g.Load(16, a =>
        {
            a.mov(al, 0x90);
            a.@out(0x90, al); // handler ran
            a.mov(al, 0x20);
            a.@out(0x20, al); // EOI
            a.iret();
        }, 0x1800);
        g.Load(16, a =>
        {
            var spin = a.CreateLabel();
            // ICW1..ICW4 for the master PIC: edge, cascade, vector base 0x20, 8086 mode; then unmask IRQ 4 only.
            a.mov(al, 0x11); a.@out(0x20, al);
            a.mov(al, 0x20); a.@out(0x21, al);
            a.mov(al, 0x04); a.@out(0x21, al);
            a.mov(al, 0x01); a.@out(0x21, al);
            a.mov(al, 0xEF); a.@out(0x21, al);
            a.mov(al, 0x8F);
            a.@out(0x8F, al); // ready
            a.sti();
            a.hlt();
            a.mov(al, 0x91);
            a.@out(0x91, al); // woke up after the handler
            a.cli();
            a.Label(ref spin);
            a.jmp(spin);
        });
        using var vcpu = g.RealModeVcpu();
        var ready = new ManualResetEventSlim();
        var done = new ManualResetEventSlim();
        g.Bus.OnPioWrite = (port, _) =>
        {
            if (port == 0x8F) ready.Set();
            if (port == 0x91) { done.Set(); vcpu.Kick(); }
        };
        VcpuExit exit = default;
        var thread = new Thread(() => exit = vcpu.Run()) { IsBackground = true };
        thread.Start();
        try
        {
            Assert.True(ready.Wait(TimeSpan.FromSeconds(10)), "guest did not program the PIC");
            Thread.Sleep(50); // let it reach HLT, where KVM blocks in the kernel with an irqchip
            Assert.False(done.IsSet);
            g.Accelerator.SetIrq(4, true);
            g.Accelerator.SetIrq(4, false);
            Assert.True(done.Wait(TimeSpan.FromSeconds(10)), "the interrupt did not wake the guest");
        }
        finally
        {
            for (int i = 0; i < 100 && !thread.Join(100); i++) vcpu.Kick();
        }
        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        var ports = g.Bus.Snapshot().Where(x => x.Write && x.Address is 0x90 or 0x91).Select(x => x.Address).ToArray();
        Assert.Equal([0x90UL, 0x91UL], ports);
    }

    [KvmFact]
    public unsafe void A_readonly_slot_is_readable_and_writes_to_it_become_mmio_until_it_is_removed()
    {
        using var g = new KvmTestGuest();
        using var rom = GuestMemory.Create([(0x20_0000UL, 0x1000UL)]);
        rom.Write<uint>(0x20_0000, 0x1234_5678);
        var region = rom.Regions[0];
        if (!g.Accelerator.Vm.HasCapability(KvmCap.ReadonlyMem))
        {
            var e = Assert.Throws<KvmException>(() => g.Accelerator.Vm.SetUserMemoryRegion(5, region.GuestBase, region.Size, (nint)region.Host, KvmUserspaceMemoryRegion.ReadOnly));
            Assert.Equal(KvmErrorKind.MissingCapability, e.Kind);
            return;
        }
        g.Accelerator.Vm.SetUserMemoryRegion(5, region.GuestBase, region.Size, (nint)region.Host, KvmUserspaceMemoryRegion.ReadOnly);
        g.Load(32, a =>
        {
            a.mov(eax, __dword_ptr[0x20_0000]);
            a.mov(__dword_ptr[0x3000], eax);
            a.mov(__dword_ptr[0x20_0004], 0xAABBCCDD);
            a.hlt();
        });
        using var vcpu = g.ProtectedModeVcpu();

        var exit = vcpu.Run();
        Assert.True(exit.Reason == VcpuExitReason.Halt, exit.ToString());
        Assert.Equal(0x1234_5678U, g.Memory.Read<uint>(0x3000));
        Assert.Equal(0U, rom.Read<uint>(0x20_0004));
        var w = Assert.Single(g.Bus.Snapshot());
        Assert.Equal((true, true, 0x20_0004UL, 0xAABBCCDDUL), (w.Mmio, w.Write, w.Address, w.Value));

        // Removed: the same read is now MMIO.
        g.Accelerator.Vm.RemoveUserMemoryRegion(5);
        g.Bus.SetMmioRead(0x20_0000, 0x0BAD_F00D);
        var s = vcpu.GetState();
        s.Rip = KvmTestGuest.CodeAddress;
        vcpu.SetState(s);
        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);
        Assert.Equal(0x0BAD_F00DU, g.Memory.Read<uint>(0x3000));
    }

    [KvmFact]
    public void Dirty_log_probe_agrees_with_harvesting_a_real_guest_store()
    {
        using var g = new KvmTestGuest();
        var region = g.Memory.Regions[0];
        bool works = g.Accelerator.ProbeDirtyLogWorks(out string detail);
        Assert.False(string.IsNullOrWhiteSpace(detail));

        var bitmap = new ulong[KvmAccelerator.DirtyLogWords(region)];
        Assert.Throws<KvmException>(() => g.Accelerator.HarvestDirtyLog(region, bitmap)); // logging is off
        g.Accelerator.SetDirtyLogging(true);
        Assert.True(g.Accelerator.IsDirtyLogging(region));
        Assert.Throws<KvmException>(() => g.Accelerator.HarvestDirtyLog(region, new ulong[1])); // too small
        g.Load(16, a =>
        {
            a.mov(__byte_ptr[0x9000], 0x5A);
            a.hlt();
        });
        using var vcpu = g.RealModeVcpu();
        g.Accelerator.HarvestDirtyLog(region, bitmap);

        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);
        Assert.Equal(0x5A, g.Memory.Read<byte>(0x9000));
        g.Accelerator.HarvestDirtyLog(region, bitmap);
        bool page9 = (bitmap[0] & (1UL << 9)) != 0;
        Assert.True(works == page9, $"probe said {works} ({detail}) but page 9's dirty bit is {page9}");
        g.Accelerator.SetDirtyLogging(false);
        Assert.False(g.Accelerator.IsDirtyLogging(region));
    }
}

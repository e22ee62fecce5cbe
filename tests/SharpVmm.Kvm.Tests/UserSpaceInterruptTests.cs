using SharpVmm.Core.Cpu;
using SharpVmm.Core.Interrupts;
using SharpVmm.Kvm.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Kvm.Tests;

/// <summary>Without the in-kernel irqchip, a user-space controller's interrupts reach the guest through KVM_INTERRUPT.</summary>
public sealed class UserSpaceInterruptTests
{
    private sealed class OneShotController : ICpuInterruptController
    {
        private volatile int _vector = -1;
        public int Acknowledged;
        public bool HasInterrupt => _vector >= 0;
        public Action? Wake { get; set; }
        public void Raise(int vector) => _vector = vector;
        public int Acknowledge()
        {
            int v = _vector;
            _vector = -1;
            if (v >= 0) Acknowledged++;
            return v;
        }
    }

    [KvmFact]
    public void Interrupts_wait_for_the_interrupt_window_then_wake_a_halted_guest()
    {
        using var g = new KvmTestGuest();
        g.Memory.Write<uint>(0x30 * 4, 0x1800); // IVT[0x30] -> 0:0x1800
        g.Load(16, a =>
        {
            a.mov(al, 0x90);
            a.@out(0x90, al);
            a.iret();
        }, 0x1800);
        g.Load(16, a =>
        {
            a.mov(al, 0x8F);
            a.@out(0x8F, al); // IF is still 0: the pending interrupt must wait across these exits
            a.mov(al, 0x8E);
            a.@out(0x8E, al);
            a.sti();
            a.nop();
            a.mov(al, 0x92);
            a.@out(0x92, al);
            a.hlt();
            a.mov(al, 0x91);
            a.@out(0x91, al);
            a.cli();
            a.hlt();
        });
        using var vcpu = g.RealModeVcpu();
        var pic = new OneShotController();
        vcpu.InterruptController = pic;
        pic.Raise(0x30);

        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);
        var first = Ports(g);
        Assert.Equal([0x8FUL, 0x8EUL], first[..2]);
        // Real KVM exits for the window right after STI's shadow; PVM's emulator only at the next exit (the out 0x92).
        Assert.Equal([0x90UL, 0x92UL], first[2..].Order().ToArray());

        pic.Raise(0x30);
        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);
        Assert.Equal([0x90UL, 0x91UL], Ports(g)[4..]);
        Assert.Equal(2, pic.Acknowledged);
    }

    [KvmFact]
    public void A_user_space_controller_is_refused_with_the_in_kernel_irqchip()
    {
        using var g = new KvmTestGuest(new KvmOptions { IrqChip = true });
        using var vcpu = g.Accelerator.CreateKvmVcpu(0);
        Assert.Throws<KvmException>(() => vcpu.InterruptController = new OneShotController());
    }

    private static ulong[] Ports(KvmTestGuest g) => [.. g.Bus.Snapshot().Where(x => x.Write).Select(x => x.Address)];
}

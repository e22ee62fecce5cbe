using System.Text;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// CPUID's hypervisor bit and leaves 0x40000000/0x40000001 (CpuidHypervisor.cs): KVM's signature with no paravirtual
/// feature but NOP_IO_DELAY, so Linux recognises a hypervisor (and uses x2APIC) without expecting kvm-clock or hypercalls.
/// </summary>
public class HypervisorLeafTests
{
    private static (uint A, uint B, uint C, uint D) Cpuid(TestGuest g, uint leaf, uint sub = 0)
    {
        g.Load64(a =>
        {
            a.mov(eax, leaf);
            a.mov(ecx, sub);
            a.cpuid();
            a.hlt();
        });
        var s = g.RunToHalt();
        return ((uint)s[Gpr.Rax], (uint)s[Gpr.Rbx], (uint)s[Gpr.Rcx], (uint)s[Gpr.Rdx]);
    }

    private static string Signature((uint A, uint B, uint C, uint D) r)
    {
        var bytes = new byte[12];
        BitConverter.TryWriteBytes(bytes.AsSpan(0), r.B);
        BitConverter.TryWriteBytes(bytes.AsSpan(4), r.C);
        BitConverter.TryWriteBytes(bytes.AsSpan(8), r.D);
        return Encoding.ASCII.GetString(bytes);
    }

    [Fact]
    public void By_default_the_cpu_says_it_runs_under_kvm_with_no_paravirtual_features_but_nop_io_delay()
    {
        using var g = new TestGuest();
        Assert.NotEqual(0u, Cpuid(g, 1).C & (1u << 31));              // the hypervisor bit
        var base_ = Cpuid(g, 0x4000_0000);
        Assert.Equal(0x4000_0001u, base_.A);                          // highest hypervisor leaf
        Assert.Equal("KVMKVMKVM\0\0\0", Signature(base_));
        var features = Cpuid(g, 0x4000_0001);
        Assert.Equal(1u << 1, features.A);                            // KVM_FEATURE_NOP_IO_DELAY only: no kvm-clock, no PV EOI...
        Assert.Equal(0u, features.B);
        Assert.Equal(0u, features.C);
        Assert.Equal(0u, features.D);                                 // no hints (KVM_HINTS_REALTIME clear)
        // Linux scans for the signature every 0x100 leaves: it must be found once, at the base.
        Assert.Equal((0u, 0u, 0u, 0u), Cpuid(g, 0x4000_0100));
        Assert.Equal((0u, 0u, 0u, 0u), Cpuid(g, 0x4000_0002));
    }

    [Fact]
    public void Switched_off_the_cpu_looks_like_bare_metal()
    {
        using var g = new TestGuest(options: new EmuOptions { HypervisorLeaves = false, LocalApicFactory = i => new FakeLocalApic(i) });
        var l1 = Cpuid(g, 1);
        Assert.Equal(0u, l1.C & (1u << 31));
        Assert.NotEqual(0u, l1.C & (1u << 21)); // x2APIC is still there; Linux just will not turn it on by itself
        Assert.Equal((0u, 0u, 0u, 0u), Cpuid(g, 0x4000_0000));
        Assert.Equal((0u, 0u, 0u, 0u), Cpuid(g, 0x4000_0001));
    }
}

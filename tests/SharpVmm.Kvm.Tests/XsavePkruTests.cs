using SharpVmm.Core.Cpu;
using SharpVmm.Kvm.Interop;
using SharpVmm.Kvm.State;
using SharpVmm.Kvm.Tests.Support;

namespace SharpVmm.Kvm.Tests;

/// <summary>PKRU in KVM's XSAVE image (XsavePkru): the layout by the SDM, without /dev/kvm, then through KVM where it has PKU.</summary>
public sealed unsafe class XsavePkruTests
{
    private const int PkruAt = 2688; // where Intel CPUs put component 9 (CPUID.0xD.9 EBX); the code takes it from CPUID

    private static KvmCpuidEntry2 Leaf(uint function, uint index, uint eax, uint ebx)
        => new() { Function = function, Index = index, Flags = KvmCpuidEntry2.FlagSignificantIndex, Eax = eax, Ebx = ebx };

    private static ulong XstateBv(in KvmXsave x)
    {
        fixed (byte* p = x.Region) return *(ulong*)(p + 512);
    }

    [Fact]
    public void The_offset_is_cpuid_leaf_0xd_subleaf_9()
    {
        Assert.Equal(PkruAt, XsavePkru.OffsetFrom([Leaf(0xD, 0, 0x207, 0), Leaf(0xD, 9, 8, PkruAt)]));
        Assert.Equal(0x980, XsavePkru.OffsetFrom([Leaf(0xD, 9, 8, 0x980)])); // another CPU, another place
        Assert.Null(XsavePkru.OffsetFrom([Leaf(0xD, 0, 0x7, 0), Leaf(0xD, 1, 1, 0)])); // no PKU: no subleaf 9
        Assert.Null(XsavePkru.OffsetFrom([Leaf(0xD, 9, 0, 0)]));                        // subleaf 9 all zero
        Assert.Null(XsavePkru.OffsetFrom([Leaf(0xD, 9, 8, 4092)]));                     // would not fit 4 KiB
        Assert.Null(XsavePkru.OffsetFrom([Leaf(0xD, 9, 8, 100)]));                      // inside the legacy area
        Assert.Null(XsavePkru.OffsetFrom([Leaf(7, 9, 8, PkruAt)]));                     // not leaf 0xD
    }

    [Fact]
    public void Pkru_is_written_at_its_offset_and_marked_present_and_zero_is_the_initial_state()
    {
        var x = new KvmXsave();
        x.Region[512] = 0x3; // x87 and SSE present: left alone
        XsavePkru.Write(0x5555_0004, ref x, PkruAt);
        Assert.Equal(0x5555_0004u, BitConverter.ToUInt32(new ReadOnlySpan<byte>(x.Region, KvmXsave.Size)[PkruAt..]));
        Assert.Equal(0x203UL, XstateBv(x));
        Assert.Equal(0x5555_0004u, XsavePkru.Read(x, PkruAt));

        XsavePkru.Write(0, ref x, PkruAt);
        Assert.Equal(0x3UL, XstateBv(x));
        Assert.Equal(0u, XsavePkru.Read(x, PkruAt));
    }

    [Fact]
    public void A_value_without_its_xstate_bv_bit_reads_as_the_initial_state()
    {
        var x = new KvmXsave();
        *(uint*)(x.Region + PkruAt) = 0xFFFF_FFFC; // stale bytes, component not present
        Assert.Equal(0u, XsavePkru.Read(x, PkruAt));
    }

    [Fact]
    public void An_offset_outside_the_image_is_refused()
    {
        var x = new KvmXsave();
        Assert.Throws<ArgumentOutOfRangeException>(() => XsavePkru.Read(x, 4094));
        Assert.Throws<ArgumentOutOfRangeException>(() => XsavePkru.Write(1, ref x, 0));
    }

    [KvmFact]
    public void Pkru_round_trips_through_kvm_or_is_refused_where_the_host_has_no_pku()
    {
        using var g = new KvmTestGuest();
        using var vcpu = g.Accelerator.CreateKvmVcpu(0);
        var s = vcpu.GetState();
        Assert.Equal(0u, s.Pkru); // reset value
        s.Pkru = 0x0000_000C;     // key 1: access and write disabled
        if (g.Accelerator.PkruXsaveOffset is null)
        {
            var e = Assert.Throws<KvmException>(() => vcpu.SetState(s));
            Assert.Contains("no protection-key state", e.Message);
            return;
        }
        vcpu.SetState(s);
        Assert.Equal(0x0000_000Cu, vcpu.GetState().Pkru);
        s.Pkru = 0;
        vcpu.SetState(s);
        Assert.Equal(0u, vcpu.GetState().Pkru);
    }
}

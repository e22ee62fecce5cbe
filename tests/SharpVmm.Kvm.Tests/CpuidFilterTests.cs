using SharpVmm.Kvm.Cpuid;
using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm.Tests;

public sealed class CpuidFilterTests
{
    private static KvmCpuidEntry2 Leaf(uint function, uint index = 0, uint ebx = 0, uint ecx = 0, uint edx = 0)
        => new() { Function = function, Index = index, Ebx = ebx, Ecx = ecx, Edx = edx };

    [Fact]
    public void The_apic_id_goes_into_leaf_1_and_every_topology_subleaf_and_nothing_else_changes()
    {
        KvmCpuidEntry2[] supported =
        [
            Leaf(0, ebx: 0x756E6547),
            Leaf(1, ebx: 0xFF12_3456, ecx: 0x0000_0009, edx: 0x0000_0200),
            Leaf(0xB, 0, edx: 0), Leaf(0xB, 1, edx: 0),
            Leaf(0x1F, 0, edx: 0),
            Leaf(7, ebx: 0xABCD),
        ];

        var mine = CpuidFilter.ForVcpu(supported, 5);

        Assert.Equal(0x0512_3456u, mine[1].Ebx);
        Assert.Equal(0x8000_0001u, mine[1].Ecx); // hypervisor set, MONITOR (bit 3) hidden, SSE3 kept
        Assert.Equal(0x200u, mine[1].Edx);
        Assert.All(mine.Where(e => e.Function is 0xB or 0x1F), e => Assert.Equal(5u, e.Edx));
        Assert.Equal(supported[0].Ebx, mine[0].Ebx);
        Assert.Equal(supported[5].Ebx, mine[5].Ebx);
        Assert.Equal(0xFF12_3456u, supported[1].Ebx); // the input is left alone
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuidFilter.ForVcpu(supported, 255));
    }
}

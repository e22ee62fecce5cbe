using SharpVmm.Core.Cpu;
using SharpVmm.Kvm.State;
using SharpVmm.Kvm.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Kvm.Tests;

/// <summary>VcpuState goes into KVM and comes back whole; the guest sees what was set.</summary>
public sealed class StateTests
{
    [KvmFact]
    public void Registers_set_before_Run_are_used_by_the_guest_and_read_back_after()
    {
        using var g = new KvmTestGuest();
        g.Load(16, a =>
        {
            a.add(ax, bx);
            a.mov(cx, 0x55);
            a.mov(__word_ptr[0x3000], si);
            a.hlt();
        });
        using var vcpu = g.RealModeVcpu(adjust: s =>
        {
            s[Gpr.Rax] = 1;
            s[Gpr.Rbx] = 2;
            s[Gpr.Rsi] = 0xBEEF;
            s[Gpr.R8] = 0xDEAD_BEEF_CAFE_BABE;
            s[Gpr.R15] = 0x0123_4567_89AB_CDEF;
        });

        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);

        var after = vcpu.GetState();
        Assert.Equal(3UL, after[Gpr.Rax]);
        Assert.Equal(0x55UL, after[Gpr.Rcx]);
        Assert.Equal(0xDEAD_BEEF_CAFE_BABEUL, after[Gpr.R8]);
        Assert.Equal(0x0123_4567_89AB_CDEFUL, after[Gpr.R15]);
        Assert.Equal(0xBEEF, g.Memory.Read<ushort>(0x3000));
        Assert.Equal(KvmTestGuest.CodeAddress + 2 + 3 + 4 + 1, after.Rip);
    }

    [KvmFact]
    public void Sse_registers_set_in_the_state_reach_the_guest()
    {
        using var g = new KvmTestGuest();
        g.Load(32, a =>
        {
            a.movdqu(__xmmword_ptr[0x3000], xmm3);
            a.movdqu(__xmmword_ptr[0x3010], xmm0);
            a.hlt();
        });
        using var vcpu = g.ProtectedModeVcpu();
        var s = vcpu.GetState();
        s.Cr4 |= 1 << 9; // OSFXSR: SSE instructions allowed
        s.Cr0 &= ~(1UL << 2); // EM off
        for (int i = 0; i < 16; i++) s.Fpu.Xmm[3 * 16 + i] = (byte)(0xA0 + i);
        s.Fpu.Xmm[0] = 0x77;
        vcpu.SetState(s);

        var exit = vcpu.Run();

        Assert.True(exit.Reason == VcpuExitReason.Halt, exit.ToString());
        var bytes = new byte[16];
        g.Memory.Read(0x3000, bytes);
        Assert.Equal(Enumerable.Range(0xA0, 16).Select(x => (byte)x).ToArray(), bytes);
        Assert.Equal(0x77, g.Memory.Read<byte>(0x3010));
    }

    [KvmFact]
    public void GetState_SetState_GetState_is_lossless_without_irqchip() => RoundTrip(irqChip: false);

    [KvmFact]
    public void GetState_SetState_GetState_is_lossless_with_irqchip_including_the_lapic_page() => RoundTrip(irqChip: true);

    [KvmFact]
    public void Xcr0_round_trips_through_kvm_xcrs()
    {
        using var g = new KvmTestGuest();
        using var vcpu = g.Accelerator.CreateKvmVcpu(0);
        var s = vcpu.GetState();
        Assert.Equal(1UL, s.Xcr0);                 // after reset: x87 only
        s.Cr4 |= 1UL << 18;                        // OSXSAVE
        s.Xcr0 = 3;
        vcpu.SetState(s);
        Assert.Equal(3UL, vcpu.GetState().Xcr0);
    }

    private static void RoundTrip(bool irqChip)
    {
        using var g = new KvmTestGuest(new KvmOptions { IrqChip = irqChip });
        using var vcpu = g.Accelerator.CreateKvmVcpu(0);
        var s = vcpu.GetState();
        for (int i = 0; i < 16; i++) s.Gprs[i] = 0x1111_1111_1111_1111UL * (ulong)(i + 1);
        s.Rip = 0x1234;
        s.Rflags = 0x202;
        s.Cr2 = 0xABCD_0000;
        s.Gdt = new DescriptorTable { Base = 0x5000, Limit = 0x27 };
        s.Idt = new DescriptorTable { Base = 0x6000, Limit = 0x7FF };
        s.Fs = s.Fs with { Base = 0x7000_0000 };
        s.Fpu.Fcw = 0x27F;
        s.Fpu.Mxcsr = 0x1FA0;
        for (int i = 0; i < s.Fpu.Xmm.Length; i++) s.Fpu.Xmm[i] = (byte)(i * 7);
        s.Fpu.St[0] = 0x42;
        s.Fpu.Ftw = 0x01;
        foreach (uint msr in new[] { MsrCatalog.SysenterCs, MsrCatalog.SysenterEip, MsrCatalog.Star, MsrCatalog.Lstar, MsrCatalog.KernelGsBase })
            if (s.Msrs.ContainsKey(msr)) s.Msrs[msr] = 0xFFFF_8000_0000_1000UL + msr;
        s.Events = s.Events with { NmiMasked = true, InterruptShadow = 1 };

        vcpu.SetState(s);
        var back = vcpu.GetState();

        Assert.Equal(s.Gprs, back.Gprs);
        Assert.Equal((s.Rip, s.Rflags, s.Cr0, s.Cr2, s.Cr3, s.Cr4, s.Efer, s.ApicBase), (back.Rip, back.Rflags, back.Cr0, back.Cr2, back.Cr3, back.Cr4, back.Efer, back.ApicBase));
        Assert.Equal((s.Gdt.Base, s.Gdt.Limit, s.Idt.Base, s.Idt.Limit), (back.Gdt.Base, back.Gdt.Limit, back.Idt.Base, back.Idt.Limit));
        Assert.Equal(s.Cs, back.Cs);
        Assert.Equal(s.Fs, back.Fs);
        Assert.Equal(s.Tr, back.Tr);
        Assert.Equal((s.Fpu.Fcw, s.Fpu.Mxcsr, s.Fpu.Ftw), (back.Fpu.Fcw, back.Fpu.Mxcsr, back.Fpu.Ftw));
        Assert.Equal(s.Fpu.Xmm, back.Fpu.Xmm);
        Assert.Equal(s.Fpu.St[0], back.Fpu.St[0]);
        Assert.NotEmpty(back.Msrs);
        Assert.Contains(MsrCatalog.Lstar, back.Msrs.Keys);
        Assert.Equal(0xFFFF_8000_0000_1000UL + MsrCatalog.Lstar, back.Msrs[MsrCatalog.Lstar]);
        Assert.Equal(s.Msrs.Where(kv => kv.Key != MsrCatalog.Tsc), back.Msrs.Where(kv => kv.Key != MsrCatalog.Tsc));
        Assert.DoesNotContain(MsrCatalog.Efer, back.Msrs.Keys);
        Assert.True(back.Events.NmiMasked);
        Assert.Equal(1, back.Events.InterruptShadow);
        if (irqChip)
        {
            Assert.NotNull(back.Lapic);
            Assert.Equal(1024, back.Lapic!.Length);
            Assert.Equal(s.Lapic, back.Lapic);
        }
        else
        {
            Assert.Null(back.Lapic);
        }
    }

    [KvmFact]
    public void Each_vcpu_sees_its_own_apic_id_in_cpuid()
    {
        using var g = new KvmTestGuest(new KvmOptions { VcpuCount = 3 });
        g.Load(16, a =>
        {
            a.mov(eax, 1);
            a.cpuid();
            a.shr(ebx, 24);
            a.mov(ax, bx);
            a.mov(dx, 0x600);
            a.@out(dx, ax);
            a.mov(eax, 0);
            a.cpuid();
            a.mov(__dword_ptr[0x3000], ebx);
            a.hlt();
        });
        using var v2 = g.RealModeVcpu(2);

        Assert.Equal(VcpuExitReason.Halt, v2.Run().Reason);

        Assert.Equal(2UL, Assert.Single(g.Bus.Snapshot()).Value);
        Assert.NotEqual(0U, g.Memory.Read<uint>(0x3000)); // vendor string from the supported CPUID reached the guest
    }

    [KvmFact]
    public void A_64_bit_guest_runs_from_a_long_mode_state_set_through_SetState()
    {
        using var g = new KvmTestGuest();
        // Identity-map the first 2 MiB with one large page: PML4 0x10000 -> PDPT 0x11000 -> PD 0x12000.
        g.Memory.Write<ulong>(0x10000, 0x11000 | 0x3);
        g.Memory.Write<ulong>(0x11000, 0x12000 | 0x3);
        g.Memory.Write<ulong>(0x12000, 0x0 | 0x83);
        g.Load(64, a =>
        {
            a.mov(rax, 0x1122_3344_5566_7788);
            a.add(rax, r9);
            a.mov(__qword_ptr[0x3000], rax);
            a.mov(dx, 0x10);
            a.@out(dx, eax);
            a.hlt();
        });
        using var vcpu = g.Accelerator.CreateKvmVcpu(0);
        var s = vcpu.GetState();
        var code = new SegmentRegister { Limit = 0xFFFF_FFFF, Selector = 8, Type = 0xB, Present = true, S = true, L = true, G = true };
        s.Cs = code;
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = code with { Selector = 0x10, Type = 0x3, L = false, Db = true };
        s.Cr3 = 0x10000;
        s.Cr4 = 1 << 5; // PAE
        s.Cr0 = 0x8000_0011; // PG | ET | PE
        s.Efer = 0x500; // LME | LMA
        s.Rip = KvmTestGuest.CodeAddress;
        s[Gpr.R9] = 0x10;
        vcpu.SetState(s);

        var exit = vcpu.Run();

        Assert.True(exit.Reason == VcpuExitReason.Halt, exit.ToString());
        Assert.Equal(0x1122_3344_5566_7798UL, g.Memory.Read<ulong>(0x3000));
        Assert.Equal(0x5566_7798UL, Assert.Single(g.Bus.Snapshot()).Value);
        var after = vcpu.GetState();
        Assert.Equal(0x500UL, after.Efer & 0x500);
        Assert.True(after.Cs.L);
        Assert.Equal(0x1122_3344_5566_7798UL, after[Gpr.Rax]);
    }

    [KvmFact]
    public unsafe void Xcr0_and_the_xsave_area_round_trip_where_kvm_has_them()
    {
        using var g = new KvmTestGuest();
        using var vcpu = g.Accelerator.CreateKvmVcpu(0);
        if (!g.Accelerator.Vm.HasCapability(Interop.KvmCap.Xcrs) || !g.Accelerator.Vm.HasCapability(Interop.KvmCap.Xsave)) return;

        var xcrs = vcpu.Fd.GetXcrs();
        Assert.True(xcrs.NrXcrs >= 1);
        Assert.Equal(0u, xcrs[0].Xcr);
        Assert.Equal(1UL, xcrs[0].Value & 1); // x87 is always enabled
        xcrs.NrXcrs = 1;
        xcrs[0] = new Interop.KvmXcr { Xcr = 0, Value = 0x3 };
        vcpu.Fd.SetXcrs(xcrs);
        Assert.Equal(0x3UL, vcpu.Fd.GetXcrs()[0].Value);

        vcpu.Fd.GetXsave(out var xsave);
        *(uint*)(xsave.Region + 24) = 0x1F00; // MXCSR in the legacy area
        xsave.Region[160] = 0xEE; // XMM0 byte 0
        *(ulong*)(xsave.Region + 512) |= 0x3;
        vcpu.Fd.SetXsave(xsave);
        var s = vcpu.GetState();
        Assert.Equal(0x1F00u, s.Fpu.Mxcsr);
        Assert.Equal(0xEE, s.Fpu.Xmm[0]);
    }
}

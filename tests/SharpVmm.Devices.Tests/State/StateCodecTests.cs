using SharpVmm.Core.Cpu;
using SharpVmm.Core.State;

namespace SharpVmm.Devices.Tests.State;

public sealed class StateCodecTests
{
    [Fact]
    public void Values_strings_arrays_and_nested_sections_read_back_as_written()
    {
        var w = new StateWriter(16);
        w.WriteU8(0xAB); w.WriteBool(true); w.WriteU16(0xBEEF); w.WriteU32(0xDEADBEEF); w.WriteI32(-5);
        w.WriteU64(ulong.MaxValue - 1); w.WriteI64(long.MinValue);
        w.WriteString("com1 ✓");
        w.WriteBytes([1, 2, 3]);
        w.WriteU32Array([7, 8]);
        using (w.Section("outer"))
        {
            w.WriteI32(42);
            using (w.Section("inner")) w.WriteString("deep");
        }
        w.WriteU8(0xEE);

        var r = new StateReader(w.ToArray());
        Assert.Equal(0xAB, r.ReadU8()); Assert.True(r.ReadBool()); Assert.Equal(0xBEEF, r.ReadU16());
        Assert.Equal(0xDEADBEEF, r.ReadU32()); Assert.Equal(-5, r.ReadI32());
        Assert.Equal(ulong.MaxValue - 1, r.ReadU64()); Assert.Equal(long.MinValue, r.ReadI64());
        Assert.Equal("com1 ✓", r.ReadString());
        Assert.Equal([1, 2, 3], r.ReadBytes(16));
        Assert.Equal([7u, 8u], r.ReadU32Array(4));
        Assert.Equal("outer", r.PeekSectionTag());
        var outer = r.ReadSection("outer");
        Assert.Equal(42, outer.ReadI32());
        var inner = outer.ReadSection("inner");
        Assert.Equal("deep", inner.ReadString());
        inner.ExpectEnd();
        outer.ExpectEnd();
        Assert.Equal(0xEE, r.ReadU8());
        r.ExpectEnd();
        Assert.Null(r.PeekSectionTag());
    }

    [Fact]
    public void Malformed_input_throws_state_format_errors_that_say_where()
    {
        var w = new StateWriter();
        using (w.Section("uart")) w.WriteU32(1);
        byte[] good = w.ToArray();

        var truncated = Assert.Throws<StateFormatException>(() => new StateReader(good[..^2], "snapshot").ReadSection("uart"));
        Assert.Contains("snapshot", truncated.Message);
        Assert.Contains("truncated", truncated.Message);
        Assert.Contains("expected section 'pit'", Assert.Throws<StateFormatException>(() => new StateReader(good).ReadSection("pit")).Message);
        Assert.Contains("unexpected bytes", Assert.Throws<StateFormatException>(() => new StateReader(good).ReadSection("uart").ExpectEnd()).Message);
        Assert.Contains("not 0 or 1", Assert.Throws<StateFormatException>(() => new StateReader(new byte[] { 7 }).ReadBool("flag")).Message);
        Assert.Contains("at most 8", Assert.Throws<StateFormatException>(() => new StateReader(new byte[] { 100, 0, 0, 0 }).ReadBytes(8)).Message);
        Assert.Contains("truncated", Assert.Throws<StateFormatException>(() => new StateReader(new byte[] { 100, 0, 0, 0 }).ReadBytes(1000)).Message);
        Assert.Contains("outside 0..3", Assert.Throws<StateFormatException>(() => new StateReader(new byte[] { 9, 0, 0, 0 }).ReadInt(0, 3, "mode")).Message);
        Assert.Contains("UTF-8", Assert.Throws<StateFormatException>(() => new StateReader(new byte[] { 2, 0, 0, 0, 0xC3, 0x28 }).ReadString()).Message);
        Assert.Contains("negative", Assert.Throws<StateFormatException>(() => new StateReader(new byte[] { 1, 0, 0, 0, (byte)'x', 0xFF, 0xFF, 0xFF, 0xFF }).ReadAnySection()).Message);
    }

    private static VcpuState Busy()
    {
        var s = new VcpuState { Rip = 0x1234_5678_9ABC, Rflags = 0x246, Cr0 = 0x8005_0033, Cr2 = 0xdead, Cr3 = 0x1000, Cr4 = 0x6F0, Cr8 = 3, Efer = 0xD01, ApicBase = 0xFEE0_0900 };
        for (int i = 0; i < 16; i++) s.Gprs[i] = (ulong)i * 0x1111_1111_1111;
        s.Cs = new SegmentRegister { Base = 0, Limit = 0xFFFF_FFFF, Selector = 0x10, Type = 0xB, Present = true, S = true, L = true, G = true };
        s.Tr = new SegmentRegister { Base = 0xFFFF_8000_0000_1000, Limit = 0x67, Selector = 0x40, Type = 0xB, Present = true, Unusable = false, Avl = true, Dpl = 0 };
        s.Ss = new SegmentRegister { Selector = 0x18, Type = 3, Present = true, S = true, Db = true, Dpl = 3, Unusable = true };
        s.Gdt = new DescriptorTable { Base = 0x5000, Limit = 0x7F };
        s.Idt = new DescriptorTable { Base = 0x6000, Limit = 0xFFF };
        s.Msrs[0x10] = 123456789; s.Msrs[0xC000_0082] = 0xFFFF_FFFF_8100_0000;
        s.Fpu.Fcw = 0x27F; s.Fpu.Fsw = 0x3800; s.Fpu.Ftw = 0x81; s.Fpu.LastOpcode = 0x5D9; s.Fpu.LastIp = 77; s.Fpu.LastDp = 88; s.Fpu.Mxcsr = 0x9FC0;
        for (int i = 0; i < s.Fpu.St.Length; i++) s.Fpu.St[i] = (byte)i;
        for (int i = 0; i < s.Fpu.Xmm.Length; i++) s.Fpu.Xmm[i] = (byte)(255 - i);
        s.Lapic = new byte[1024];
        s.Lapic[0x20] = 0x01; s.Lapic[0x3F0] = 0xAA;
        s.Events = new VcpuEvents { ExceptionPending = true, ExceptionVector = 14, ExceptionHasErrorCode = true, ExceptionErrorCode = 6, InterruptShadow = 1, NmiMasked = true, Halted = true };
        return s;
    }

    [Fact]
    public void A_vcpu_state_round_trips_field_for_field()
    {
        var s = Busy();
        s.Xcr0 = 0x203;
        s.Pkru = 0x5555_5554;
        var w = new StateWriter();
        VcpuStateCodec.Write(w, s);
        var r = new StateReader(w.ToArray());
        var back = VcpuStateCodec.Read(r);
        r.ExpectEnd();
        Assert.Equal(s.Gprs, back.Gprs);
        Assert.Equal((s.Rip, s.Rflags, s.Cr0, s.Cr2, s.Cr3, s.Cr4, s.Cr8, s.Efer, s.ApicBase), (back.Rip, back.Rflags, back.Cr0, back.Cr2, back.Cr3, back.Cr4, back.Cr8, back.Efer, back.ApicBase));
        Assert.Equal(s.Cs, back.Cs); Assert.Equal(s.Tr, back.Tr); Assert.Equal(s.Ss, back.Ss); Assert.Equal(s.Ldtr, back.Ldtr);
        Assert.Equal(s.Gdt, back.Gdt); Assert.Equal(s.Idt, back.Idt);
        Assert.Equal(s.Msrs, back.Msrs);
        Assert.Equal((s.Fpu.Fcw, s.Fpu.Fsw, s.Fpu.Ftw, s.Fpu.LastOpcode, s.Fpu.LastIp, s.Fpu.LastDp, s.Fpu.Mxcsr),
            (back.Fpu.Fcw, back.Fpu.Fsw, back.Fpu.Ftw, back.Fpu.LastOpcode, back.Fpu.LastIp, back.Fpu.LastDp, back.Fpu.Mxcsr));
        Assert.Equal(s.Fpu.St, back.Fpu.St); Assert.Equal(s.Fpu.Xmm, back.Fpu.Xmm);
        Assert.Equal(s.Lapic, back.Lapic);
        Assert.Equal(s.Events, back.Events);
        Assert.Equal(0x203UL, back.Xcr0);
        Assert.Equal(0x5555_5554u, back.Pkru);

        byte[] all = w.ToArray();
        for (int cut = 0; cut < all.Length; cut += 37)
            Assert.Throws<StateFormatException>(() => VcpuStateCodec.Read(new StateReader(all[..cut])));
    }

    [Fact]
    public void Version_1_and_2_vcpu_states_still_read_with_the_reset_values_of_what_they_lack()
    {
        var s = Busy();
        s.Xcr0 = 3;
        s.Pkru = 0x0C;
        var w = new StateWriter();
        VcpuStateCodec.Write(w, s);
        byte[] v3 = w.ToArray();
        // Version 2 is version 3 without PKRU (after XCR0); version 1 also lacks XCR0 (after the APIC base).
        int xcr0At = 4 + 16 * 8 + 8 + 8 + 8 * 17 + 2 * 10 + 6 * 8 + 8;
        byte[] v2 = [.. v3[..(xcr0At + 8)], .. v3[(xcr0At + 12)..]];
        v2[0] = 2;
        var back2 = VcpuStateCodec.Read(new StateReader(v2));
        Assert.Equal(3UL, back2.Xcr0);
        Assert.Equal(0u, back2.Pkru);
        Assert.Equal(Busy().Msrs, back2.Msrs);
        byte[] v1 = [.. v3[..xcr0At], .. v3[(xcr0At + 12)..]];
        v1[0] = 1;
        var back1 = VcpuStateCodec.Read(new StateReader(v1));
        Assert.Equal(1UL, back1.Xcr0);
        Assert.Equal(0u, back1.Pkru);
        Assert.Equal(Busy().Msrs, back1.Msrs);
    }
}

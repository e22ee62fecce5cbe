using SharpVmm.Core.Cpu;

namespace SharpVmm.Core.State;

/// <summary>
/// <see cref="VcpuState"/> in saved-state form: every field (registers, segments with their hidden parts, control
/// registers, MSRs, x87/SSE, the LAPIC page, pending events), so a vCPU continues exactly where it stopped.
/// </summary>
public static class VcpuStateCodec
{
    /// <summary>
    /// Version 2 added XCR0 (after the APIC base), version 3 PKRU (after XCR0); older states read with XCR0 = x87
    /// only and PKRU = 0, their reset values.
    /// </summary>
    public const int Version = 3;
    private const int MaxMsrs = 4096;

    public static void Write(StateWriter w, VcpuState s)
    {
        ArgumentNullException.ThrowIfNull(s);
        w.WriteI32(Version);
        if (s.Gprs.Length != 16) throw new ArgumentException("VcpuState.Gprs must hold 16 registers", nameof(s));
        foreach (ulong r in s.Gprs) w.WriteU64(r);
        w.WriteU64(s.Rip);
        w.WriteU64(s.Rflags);
        foreach (var seg in new[] { s.Cs, s.Ds, s.Es, s.Fs, s.Gs, s.Ss, s.Tr, s.Ldtr }) WriteSegment(w, seg);
        w.WriteU64(s.Gdt.Base); w.WriteU16(s.Gdt.Limit);
        w.WriteU64(s.Idt.Base); w.WriteU16(s.Idt.Limit);
        w.WriteU64(s.Cr0); w.WriteU64(s.Cr2); w.WriteU64(s.Cr3); w.WriteU64(s.Cr4); w.WriteU64(s.Cr8);
        w.WriteU64(s.Efer);
        w.WriteU64(s.ApicBase);
        w.WriteU64(s.Xcr0);
        w.WriteU32(s.Pkru);
        w.WriteI32(s.Msrs.Count);
        foreach (var (index, value) in s.Msrs)
        {
            w.WriteU32(index);
            w.WriteU64(value);
        }
        var f = s.Fpu;
        w.WriteU16(f.Fcw); w.WriteU16(f.Fsw); w.WriteU8(f.Ftw); w.WriteU16(f.LastOpcode);
        w.WriteU64(f.LastIp); w.WriteU64(f.LastDp); w.WriteU32(f.Mxcsr);
        w.WriteBytes(f.St);
        w.WriteBytes(f.Xmm);
        w.WriteBool(s.Lapic is not null);
        if (s.Lapic is not null) w.WriteBytes(s.Lapic);
        var e = s.Events;
        w.WriteBool(e.ExceptionPending); w.WriteU8(e.ExceptionVector); w.WriteBool(e.ExceptionHasErrorCode); w.WriteU32(e.ExceptionErrorCode);
        w.WriteBool(e.InterruptPending); w.WriteU8(e.InterruptVector); w.WriteU8(e.InterruptShadow);
        w.WriteBool(e.NmiPending); w.WriteBool(e.NmiMasked); w.WriteBool(e.Halted);
    }

    public static VcpuState Read(StateReader r)
    {
        int version = r.ReadI32("vCPU state version");
        if (version is not (1 or 2 or Version)) throw r.Error($"vCPU state version {version} is not supported (this SharpVmm reads version {Version})");
        var s = new VcpuState();
        for (int i = 0; i < 16; i++) s.Gprs[i] = r.ReadU64("a general-purpose register");
        s.Rip = r.ReadU64("RIP");
        s.Rflags = r.ReadU64("RFLAGS");
        s.Cs = ReadSegment(r); s.Ds = ReadSegment(r); s.Es = ReadSegment(r); s.Fs = ReadSegment(r);
        s.Gs = ReadSegment(r); s.Ss = ReadSegment(r); s.Tr = ReadSegment(r); s.Ldtr = ReadSegment(r);
        s.Gdt = new DescriptorTable { Base = r.ReadU64("GDT base"), Limit = r.ReadU16("GDT limit") };
        s.Idt = new DescriptorTable { Base = r.ReadU64("IDT base"), Limit = r.ReadU16("IDT limit") };
        s.Cr0 = r.ReadU64("CR0"); s.Cr2 = r.ReadU64("CR2"); s.Cr3 = r.ReadU64("CR3"); s.Cr4 = r.ReadU64("CR4"); s.Cr8 = r.ReadU64("CR8");
        s.Efer = r.ReadU64("EFER");
        s.ApicBase = r.ReadU64("APIC base");
        if (version >= 2)
        {
            s.Xcr0 = r.ReadU64("XCR0");
            if ((s.Xcr0 & 1) == 0) throw r.Error($"XCR0 0x{s.Xcr0:x} lacks the x87 bit, which is always set");
        }
        if (version >= 3) s.Pkru = r.ReadU32("PKRU");
        int msrs = r.ReadInt(0, MaxMsrs, "MSR count");
        for (int i = 0; i < msrs; i++)
        {
            uint index = r.ReadU32("MSR index");
            if (!s.Msrs.TryAdd(index, r.ReadU64("MSR value"))) throw r.Error($"MSR 0x{index:x} appears twice");
        }
        var f = s.Fpu;
        f.Fcw = r.ReadU16("FCW"); f.Fsw = r.ReadU16("FSW"); f.Ftw = r.ReadU8("FTW"); f.LastOpcode = r.ReadU16("FOP");
        f.LastIp = r.ReadU64("FPU IP"); f.LastDp = r.ReadU64("FPU DP"); f.Mxcsr = r.ReadU32("MXCSR");
        r.ReadBytesExactly(f.St, "x87 registers");
        r.ReadBytesExactly(f.Xmm, "XMM registers");
        if (r.ReadBool("LAPIC presence")) s.Lapic = r.ReadBytes(64 * 1024, "LAPIC page");
        s.Events = new VcpuEvents
        {
            ExceptionPending = r.ReadBool("exception pending"), ExceptionVector = r.ReadU8("exception vector"),
            ExceptionHasErrorCode = r.ReadBool("exception error-code flag"), ExceptionErrorCode = r.ReadU32("exception error code"),
            InterruptPending = r.ReadBool("interrupt pending"), InterruptVector = r.ReadU8("interrupt vector"),
            InterruptShadow = r.ReadU8("interrupt shadow"),
            NmiPending = r.ReadBool("NMI pending"), NmiMasked = r.ReadBool("NMI masked"), Halted = r.ReadBool("halted"),
        };
        return s;
    }

    private static void WriteSegment(StateWriter w, in SegmentRegister s)
    {
        w.WriteU64(s.Base);
        w.WriteU32(s.Limit);
        w.WriteU16(s.Selector);
        w.WriteU8(s.Type);
        w.WriteU8(s.Dpl);
        int flags = (s.Present ? 1 : 0) | (s.Db ? 2 : 0) | (s.S ? 4 : 0) | (s.L ? 8 : 0) | (s.G ? 16 : 0) | (s.Avl ? 32 : 0) | (s.Unusable ? 64 : 0);
        w.WriteU8((byte)flags);
    }

    private static SegmentRegister ReadSegment(StateReader r)
    {
        var s = new SegmentRegister
        {
            Base = r.ReadU64("segment base"),
            Limit = r.ReadU32("segment limit"),
            Selector = r.ReadU16("segment selector"),
            Type = r.ReadU8("segment type"),
            Dpl = r.ReadU8("segment DPL"),
        };
        byte flags = r.ReadU8("segment flags");
        if ((flags & 0x80) != 0 || s.Type > 15 || s.Dpl > 3) throw r.Error($"segment {s.Selector:x4} has invalid attributes (type {s.Type}, DPL {s.Dpl}, flags 0x{flags:x})");
        s.Present = (flags & 1) != 0; s.Db = (flags & 2) != 0; s.S = (flags & 4) != 0; s.L = (flags & 8) != 0;
        s.G = (flags & 16) != 0; s.Avl = (flags & 32) != 0; s.Unusable = (flags & 64) != 0;
        return s;
    }
}

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>Field-by-field comparison of the host's result with the emulator's, as readable lines.</summary>
internal static class DiffCompare
{
    public static List<string> Differences(DiffCase c, EmuResult e, InstructionClass cls)
    {
        var d = new List<string>();
        if (c.FaultVector is int fv && e.Error is null && e.State is not null)
        {
            if (e.Vector != fv || e.FaultRip != c.FaultAddress)
            {
                d.Add($"expected {EmuResult.VectorNames[fv]} at rip 0x{c.FaultAddress:x}; {e.Describe()}");
                return d;
            }
            // A fault leaves every register as it was before the instruction; RSP holds the 5-qword interrupt frame.
            ulong frameRsp = c.Expected.Gprs[4] - 40;
            if (e.State.Gprs[4] != frameRsp) d.Add($"rsp in the handler: expected 0x{frameRsp:x} (5-qword frame), emulator 0x{e.State.Gprs[4]:x}");
            var st = e.State.Clone();
            st.Gprs[4] = c.Expected.Gprs[4];
            var data = (byte[])e.Data.Clone();
            int frame = (int)(frameRsp - (c.CodeAddress - DiffLayout.Code + DiffLayout.Compared));
            if (frame >= 0 && frame + 40 <= data.Length) c.ExpectedData.AsSpan(frame, 40).CopyTo(data.AsSpan(frame)); // the frame is the handler's
            Compare(c, st, data, cls, d);
            return d;
        }
        if (c.FaultVector is int v2 && e.Vector is null && e.Error is null)
        {
            d.Add($"expected {EmuResult.VectorNames[v2]} at rip 0x{c.FaultAddress:x}; {e.Describe()}");
            return d;
        }
        if (e.Error is not null || e.Vector is not null || e.State is null)
        {
            d.Add(e.Describe());
            if (e.Error is not null) d.Add(e.Error.StackTrace?.Split('\n').FirstOrDefault()?.Trim() ?? "");
            return d;
        }
        if (e.Exit.Reason != Core.Cpu.VcpuExitReason.Halt) d.Add($"exit: expected Halt, got {e.Exit}");
        if (e.Rip != c.HltAddress && e.Rip != c.HltAddress + 1)
            d.Add($"rip: expected 0x{c.HltAddress:x} (the HLT) or 0x{c.HltAddress + 1:x} (past it), emulator 0x{e.Rip:x}");
        foreach (var io in e.IoAccesses) d.Add($"unexpected I/O: {io}");

        Compare(c, e.State, e.Data, cls, d);
        return d;
    }

    private static void Compare(DiffCase c, CpuSnapshot s, byte[] data, InstructionClass cls, List<string> d)
    {
        var h = c.Expected;
        for (int i = 0; i < 16; i++)
            if (h.Gprs[i] != s.Gprs[i])
                d.Add($"{CpuSnapshot.GprNames[i]}: host 0x{h.Gprs[i]:x16} emulator 0x{s.Gprs[i]:x16}");
        ulong mask = (CpuSnapshot.StatusFlags | CpuSnapshot.DF) & ~c.UndefinedFlags;
        if (((h.Rflags ^ s.Rflags) & mask) != 0)
            d.Add($"rflags: host {CpuSnapshot.FlagsText(h.Rflags & mask)} emulator {CpuSnapshot.FlagsText(s.Rflags & mask)} " +
                  $"(differing {CpuSnapshot.FlagsText((h.Rflags ^ s.Rflags) & mask)}; undefined and not compared {CpuSnapshot.FlagsText(c.UndefinedFlags)})");
        for (int i = 0; i < 16; i++)
            if (h.XmmLow(i) != s.XmmLow(i) || h.XmmHigh(i) != s.XmmHigh(i))
                d.Add($"xmm{i}: host 0x{h.XmmHigh(i):x16}_{h.XmmLow(i):x16} emulator 0x{s.XmmHigh(i):x16}_{s.XmmLow(i):x16}");
        uint mm = cls.MxcsrCompareMask;
        if (((h.Mxcsr ^ s.Mxcsr) & mm) != 0)
            d.Add($"mxcsr: host 0x{h.Mxcsr:x} emulator 0x{s.Mxcsr:x} (compared bits 0x{mm:x})");

        int shown = 0, total = 0;
        for (int i = 0; i < c.ExpectedData.Length; i++)
        {
            if (c.ExpectedData[i] == data[i]) continue;
            total++;
            if (shown++ < 8)
                d.Add($"data[0x{i:x}] (address 0x{c.CodeAddress - DiffLayout.Code + DiffLayout.Compared + (ulong)i:x}): " +
                      $"host 0x{c.ExpectedData[i]:x2} emulator 0x{data[i]:x2} (initially 0x{c.InitialData[i]:x2})");
        }
        if (total > shown) d.Add($"... {total} data bytes differ in all");
    }
}

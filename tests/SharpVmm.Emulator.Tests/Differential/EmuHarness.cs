using SharpVmm.Core.Cpu;
using SharpVmm.Memory;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>What one emulator run left behind.</summary>
internal sealed class EmuResult
{
    public VcpuExit Exit { get; init; }
    public CpuSnapshot? State { get; init; }
    public ulong Rip { get; init; }
    public byte[] Data { get; init; } = [];
    /// <summary>An exception the emulator threw out of Run/GetState/SetState, if any.</summary>
    public Exception? Error { get; init; }
    /// <summary>The guest exception vector when the run ended in one of the IDT's HLT stubs.</summary>
    public int? Vector { get; init; }
    public ulong FaultRip { get; init; }
    public ulong FaultErrorCode { get; init; }
    public IReadOnlyList<string> IoAccesses { get; init; } = [];

    public static readonly string[] VectorNames =
        ["#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "vec9", "#TS", "#NP", "#SS", "#GP", "#PF", "vec15",
         "#MF", "#AC", "#MC", "#XM"];

    public string Describe()
    {
        if (Error is not null) return $"emulator threw {Error.GetType().Name}: {Error.Message}";
        if (Vector is int v)
        {
            string name = v < VectorNames.Length ? VectorNames[v] : $"vector {v}";
            return $"guest took {name} at rip 0x{FaultRip:x} (error code 0x{FaultErrorCode:x})";
        }
        return $"exit {Exit}, rip 0x{Rip:x}";
    }
}

/// <summary>
/// The emulator side: guest RAM at the native runner's address (identity mapped with 2 MiB pages over the
/// first GiB), 64-bit long mode with flat segments, and an IDT whose every vector lands on its own HLT stub (so a
/// guest exception reports its vector instead of triple-faulting). One accelerator serves run after run: each
/// case's code reaches it through <see cref="GuestMemory.Write"/>, which must drop stale decoded blocks; a
/// failing case is re-run on a fresh accelerator to tell a stale-cache bug from a wrong result.
/// </summary>
internal sealed class EmuHarness : IDisposable
{
    private static readonly bool[] HasErrorCode = [.. Enumerable.Range(0, 32).Select(v => v is 8 or 10 or 11 or 12 or 13 or 14 or 17 or 21)];

    private readonly RecordingIoBus _bus = new();
    private IAccelerator? _acc;
    private IVcpu? _vcpu;

    public EmuHarness(ulong regionBase)
    {
        if (regionBase + DiffLayout.RegionSize > 0x4000_0000) throw new ArgumentOutOfRangeException(nameof(regionBase), "region must lie in the first GiB");
        Base = regionBase;
        Memory = GuestMemory.Create([(0UL, DiffLayout.GuestLowRamSize), (regionBase, DiffLayout.RegionSize)]);
        WriteSystemTables();
    }

    public ulong Base { get; }
    public GuestMemory Memory { get; }

    /// <summary>
    /// Runs <paramref name="code"/> from <paramref name="input"/>. The accelerator and vCPU are reused from run to
    /// run (new code arrives through <see cref="GuestMemory.Write"/>, which the emulator must notice) unless
    /// <paramref name="fresh"/> asks for new ones; any failure also discards them.
    /// </summary>
    public EmuResult Run(CpuSnapshot input, ReadOnlySpan<byte> code, ulong codeAddress, ReadOnlySpan<byte> data, TimeSpan timeout, bool fresh = false)
    {
        if (fresh) DropEmulator();
        Memory.Write(codeAddress, code);
        Memory.Write(Base + DiffLayout.Compared, data);
        _bus.Clear();
        bool ok = false;
        try
        {
            _acc ??= EmulatorFactory.Create(Memory, _bus);
            _vcpu ??= _acc.CreateVcpu(0);
            var vcpu = _vcpu;
            vcpu.SetState(MakeState(input, codeAddress));
            var cpu = vcpu;
            VcpuExit exit;
            using (new Timer(_ => cpu.Kick(), null, timeout, Timeout.InfiniteTimeSpan))
                exit = vcpu.Run();
            var st = vcpu.GetState();
            var snap = new CpuSnapshot { Rflags = st.Rflags, Mxcsr = st.Fpu.Mxcsr };
            st.Gprs.AsSpan(0, 16).CopyTo(snap.Gprs);
            st.Fpu.Xmm.AsSpan(0, 256).CopyTo(snap.Xmm);
            var bytes = new byte[DiffLayout.ComparedSize];
            Memory.Read(Base + DiffLayout.Compared, bytes);

            ulong stubs = DiffLayout.GuestVectorStubs;
            if (exit.Reason == VcpuExitReason.Halt && st.Rip >= stubs && st.Rip <= stubs + 256 * DiffLayout.VectorStubSize)
            {
                // RIP is the stub (HLT not yet retired) or one past it (retired, as KVM reports HLT exits)
                ulong off = st.Rip - stubs;
                int vector = (int)((off % (ulong)DiffLayout.VectorStubSize == 0 ? off : off - 1) / (ulong)DiffLayout.VectorStubSize);
                bool err = vector < 32 && HasErrorCode[vector];
                ulong rsp = st.Gprs[4];
                ulong errorCode = 0, faultRip = 0;
                try
                {
                    errorCode = err ? Memory.Read<ulong>(rsp) : 0;
                    faultRip = Memory.Read<ulong>(rsp + (err ? 8UL : 0UL));
                }
                catch (GuestMemoryException) { /* a broken frame still reports the vector */ }
                return new EmuResult { Exit = exit, State = snap, Rip = st.Rip, Data = bytes, Vector = vector, FaultRip = faultRip, FaultErrorCode = errorCode, IoAccesses = [.. _bus.Accesses] };
            }
            ok = exit.Reason == VcpuExitReason.Halt && _bus.Accesses.Count == 0;
            return new EmuResult { Exit = exit, State = snap, Rip = st.Rip, Data = bytes, IoAccesses = [.. _bus.Accesses] };
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new EmuResult { Exit = new VcpuExit(VcpuExitReason.InternalError), Error = e, IoAccesses = [.. _bus.Accesses] };
        }
        finally
        {
            if (!ok) DropEmulator();
        }
    }

    private void DropEmulator()
    {
        _vcpu?.Dispose();
        _acc?.Dispose();
        _vcpu = null;
        _acc = null;
    }

    private static SegmentRegister Data64 => new()
    {
        Selector = 0x10, Base = 0, Limit = 0xFFFF_FFFF, Type = 0x3, Present = true, S = true, Db = true, G = true,
    };

    private static VcpuState MakeState(CpuSnapshot input, ulong rip)
    {
        var s = new VcpuState
        {
            Rip = rip,
            Rflags = (input.Rflags & (CpuSnapshot.StatusFlags | CpuSnapshot.DF)) | 0x2, // IF=0: HLT ends the run
            Cs = new SegmentRegister { Selector = 0x8, Base = 0, Limit = 0xFFFF_FFFF, Type = 0xB, Present = true, S = true, L = true, G = true },
            Ds = Data64, Es = Data64, Fs = Data64, Gs = Data64, Ss = Data64,
            Tr = new SegmentRegister { Selector = 0x18, Base = DiffLayout.GuestTss, Limit = 0x67, Type = 0xB, Present = true },
            Ldtr = new SegmentRegister { Unusable = true, Type = 0x2 },
            Gdt = new DescriptorTable { Base = DiffLayout.GuestGdt, Limit = 0x27 },
            Idt = new DescriptorTable { Base = DiffLayout.GuestIdt, Limit = 0xFFF },
            Cr0 = 0x8005_0033, // PG WP NE ET MP PE (AM set, but AC stays clear)
            Cr3 = DiffLayout.GuestPml4,
            Cr4 = 0x620,       // PAE OSFXSR OSXMMEXCPT
            Efer = 0x500,      // LME LMA
        };
        input.Gprs.AsSpan().CopyTo(s.Gprs);
        s.Fpu.Mxcsr = input.Mxcsr;
        input.Xmm.AsSpan().CopyTo(s.Fpu.Xmm);
        return s;
    }

    private void WriteSystemTables()
    {
        Memory.Clear(0, DiffLayout.GuestLowRamSize);
        Memory.Write(DiffLayout.GuestPml4, DiffLayout.GuestPdpt | 0x3);
        Memory.Write(DiffLayout.GuestPdpt, DiffLayout.GuestPd | 0x3);
        for (ulong i = 0; i < 512; i++) Memory.Write(DiffLayout.GuestPd + i * 8, (i << 21) | 0x83); // P RW PS

        Memory.Write(DiffLayout.GuestGdt + 0x08, 0x00AF_9B00_0000_FFFFUL); // 64-bit code
        Memory.Write(DiffLayout.GuestGdt + 0x10, 0x00CF_9300_0000_FFFFUL); // data
        ulong tss = DiffLayout.GuestTss, limit = 0x67;
        ulong tssLow = (limit & 0xFFFF) | ((tss & 0xFFFF) << 16) | (((tss >> 16) & 0xFF) << 32) | (0x8BUL << 40) | (((tss >> 24) & 0xFF) << 56);
        Memory.Write(DiffLayout.GuestGdt + 0x18, tssLow);
        Memory.Write(DiffLayout.GuestGdt + 0x20, tss >> 32);

        for (ulong v = 0; v < 256; v++)
        {
            ulong stub = DiffLayout.GuestVectorStubs + v * (ulong)DiffLayout.VectorStubSize;
            Memory.Write(stub, [0xF4, 0xEB, 0xFD]); // hlt; jmp back to the hlt
            ulong low = (stub & 0xFFFF) | (0x08UL << 16) | (0x8EUL << 40) | (((stub >> 16) & 0xFFFF) << 48);
            Memory.Write(DiffLayout.GuestIdt + v * 16, low);
            Memory.Write(DiffLayout.GuestIdt + v * 16 + 8, stub >> 32);
        }
    }

    public void Dispose()
    {
        DropEmulator();
        Memory.Dispose();
    }
}

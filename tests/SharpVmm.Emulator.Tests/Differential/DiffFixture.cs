using SharpVmm.Core.Cpu;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// One native runner and one guest for the whole differential collection: the runner owns a fixed host
/// address, so the classes run one after another (they share the collection), never in parallel.
/// </summary>
public sealed class DiffFixture : IDisposable
{
    private readonly Lazy<(CpuFeature Features, string? Error)> _emuFeatures;

    public DiffFixture()
    {
        Native = new NativeRunner();
        Emu = new EmuHarness(Native.Base);
        Builder = new CaseBuilder(Native);
        HostFeatures = CpuFeatures.Host();
        _emuFeatures = new(ProbeEmulator);
    }

    internal NativeRunner Native { get; }
    internal EmuHarness Emu { get; }
    internal CaseBuilder Builder { get; }
    internal CpuFeature HostFeatures { get; }

    /// <summary>The emulator's CPUID features, read by running CPUID in the guest.</summary>
    internal (CpuFeature Features, string? Error) EmulatorFeatures => _emuFeatures.Value;

    private (CpuFeature, string?) ProbeEmulator()
    {
        if (EmulatorFactory.Unavailable is string why) return (CpuFeature.None, why);
        string? error = null;
        var f = CpuFeatures.Decode((leaf, sub) =>
        {
            var input = new CpuSnapshot();
            input.Gprs[0] = leaf;
            input.Gprs[1] = sub;
            input.Gprs[4] = Native.StackTopAddress;
            byte[] code = [0x0F, 0xA2, 0xF4]; // cpuid; hlt
            var e = Emu.Run(input, code, Native.CodeAddress, new byte[DiffLayout.ComparedSize], TimeSpan.FromSeconds(5), fresh: true);
            ulong hlt = Native.CodeAddress + 2;
            if (e.State is null || e.Exit.Reason != VcpuExitReason.Halt || e.Vector is not null || (e.Rip != hlt && e.Rip != hlt + 1))
            {
                error ??= $"CPUID leaf 0x{leaf:x}: {e.Describe()}";
                return (0, 0, 0, 0);
            }
            var g = e.State.Gprs;
            return ((uint)g[0], (uint)g[3], (uint)g[1], (uint)g[2]);
        });
        return (f, error);
    }

    public void Dispose()
    {
        Emu.Dispose();
        Native.Dispose();
    }
}

[CollectionDefinition("Differential")]
public sealed class DiffCollection : ICollectionFixture<DiffFixture>;

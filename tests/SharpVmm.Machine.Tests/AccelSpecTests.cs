using SharpVmm.Boot.Flat;
using SharpVmm.Core;
using SharpVmm.Emulator;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

public sealed class AccelSpecTests
{
    [Theory]
    [InlineData("kvm", AcceleratorKind.Kvm, null)]
    [InlineData("EMU", AcceleratorKind.Emu, null)]
    [InlineData("auto", AcceleratorKind.Auto, null)]
    [InlineData("emu,tb-size=16", AcceleratorKind.Emu, 16L << 20)]
    [InlineData("emu,tb-size=0", AcceleratorKind.Emu, 0L)]
    [InlineData("auto,tb-size=2", AcceleratorKind.Auto, 2L << 20)]
    public void Accelerator_specs_parse(string text, AcceleratorKind kind, long? cache)
        => Assert.Equal(new AccelSpec(kind, cache), AccelSpec.Parse(text));

    [Theory]
    [InlineData("emu,jit=on", JitMode.On, null)]
    [InlineData("emu,jit=OFF", JitMode.Off, null)]
    [InlineData("emu,jit=forced,jit-threshold=1", JitMode.Forced, 1)]
    [InlineData("emu,tb-size=8,jit-threshold=500", null, 500)]
    public void Jit_options_parse(string text, JitMode? jit, int? threshold)
    {
        var spec = AccelSpec.Parse(text);
        Assert.Equal(AcceleratorKind.Emu, spec.Kind);
        Assert.Equal(jit, spec.Jit);
        Assert.Equal(threshold, spec.JitThreshold);
    }

    [Theory]
    [InlineData("emu", null)]
    [InlineData("emu,hypervisor=on", true)]
    [InlineData("emu,hypervisor=OFF", false)]
    [InlineData("auto,jit=on,hypervisor=off", false)]
    public void The_hypervisor_leaves_option_parses(string text, bool? expected)
        => Assert.Equal(expected, AccelSpec.Parse(text).HypervisorLeaves);

    [Theory]
    [InlineData("", "not an accelerator")]
    [InlineData("emu,hypervisor=yes", "not on or off")]
    [InlineData("emu,hypervisor=on,hypervisor=off", "twice")]
    [InlineData("kvm,hypervisor=off", "does not apply to kvm")]
    [InlineData("emu,jit=fast", "not on, off or forced")]
    [InlineData("emu,jit=on,jit=off", "twice")]
    [InlineData("emu,jit-threshold=0", "not a count")]
    [InlineData("emu,jit-threshold=x", "not a count")]
    [InlineData("kvm,jit=on", "does not apply to kvm")]
    [InlineData("tcg", "not an accelerator")]
    [InlineData("1", "not an accelerator")]
    [InlineData("emu,tb-size=", "not a size in MiB")]
    [InlineData("emu,tb-size=-4", "not a size in MiB")]
    [InlineData("emu,tb-size=4M", "not a size in MiB")]
    [InlineData("emu,tb-size=99999999", "not a size in MiB")]
    [InlineData("emu,tb-size=4,tb-size=8", "twice")]
    [InlineData("emu,thread=multi", "not understood")]
    [InlineData("kvm,tb-size=8", "does not apply to kvm")]
    public void Bad_accelerator_specs_say_what_is_wrong(string text, string why)
        => Assert.Contains(why, Assert.Throws<ConfigurationException>(() => AccelSpec.Parse(text)).Message, StringComparison.Ordinal);

    [Theory]
    [InlineData(null, EmuOptions.DefaultCodeCacheBudgetBytes)]
    [InlineData(0L, 0L)]
    [InlineData(1L << 20, 1L << 20)]
    public void The_emulator_gets_the_code_cache_budget_asked_for(long? asked, long expected)
    {
        string bin = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(bin, [0xF4]); // hlt
            using var vm = VmBuilder.Build(new VmConfig
            {
                Accelerator = AcceleratorKind.Emu,
                CodeCacheBytes = asked,
                Flat = new FlatImageSpec(bin, 0x1000, EntryMode.Real),
                MemoryBytes = 16UL << 20,
                Serial = "none",
            });
            Assert.Equal(expected, Assert.IsType<EmuAccelerator>(vm.Accelerator).CodeCacheBudgetBytes);
        }
        finally
        {
            File.Delete(bin);
        }
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void The_emulator_gets_the_hypervisor_leaves_asked_for(bool? asked, bool expected)
    {
        string bin = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(bin, [0xF4]); // hlt
            using var vm = VmBuilder.Build(new VmConfig
            {
                Accelerator = AcceleratorKind.Emu,
                HypervisorLeaves = asked,
                Flat = new FlatImageSpec(bin, 0x1000, EntryMode.Real),
                MemoryBytes = 16UL << 20,
                Serial = "none",
            });
            Assert.Equal(expected, Assert.IsType<EmuAccelerator>(vm.Accelerator).HypervisorLeaves);
        }
        finally
        {
            File.Delete(bin);
        }
    }
}

using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Boot.Multiboot;
using SharpVmm.Core;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Time;
using SharpVmm.Machine.Config;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Board;

public static partial class VmBuilder
{
    /// <summary>
    /// Opens the boot files before anything is mapped, so a bad file fails fast and cheaply. A Multiboot header wins
    /// (test kernels are ELF files, which the bzImage check would refuse); either way a bad image is an error before
    /// any vCPU exists.
    /// </summary>
    private static void OpenPayload(MachineParts parts)
    {
        var config = parts.Config;
        if (config.Kernel is null)
        {
            parts.Flat = ReadFile(config.Flat!.Path, "flat binary");
            return;
        }
        var kernel = BootFile.Open(config.Kernel, "kernel");
        parts.Disposables.Add(kernel);
        parts.Kernel = kernel;
        using (var bytes = kernel.Read())
        {
            parts.Multiboot = MultibootLoader.IsMultiboot(bytes.Memory.Span);
            if (parts.Multiboot) Elf32Image.Parse(bytes.Memory.Span);
            else SetupHeader.Parse(bytes.Memory.Span);
        }
        if (config.Initrd is not null)
        {
            parts.Initrd = BootFile.Open(config.Initrd, "initrd");
            parts.Disposables.Add(parts.Initrd);
        }
    }

    /// <summary>What puts the payload into RAM and gives the vCPUs their first state (run at each start and reset).</summary>
    private static Func<VcpuState[]> PayloadLoader(MachineParts parts, AcceleratorKind kind)
    {
        var (config, memory) = (parts.Config, parts.Memory!);
        if (parts.Multiboot) return MultibootPayload(memory, parts.Kernel!, parts.Initrd, config);
        if (parts.Linux)
            return LinuxPayload(memory, parts.Kernel!, parts.Initrd, KernelCommandLine(config, kind == AcceleratorKind.Emu ? parts.Clock : null), parts.Rsdp);
        return FlatPayload(memory, parts.Flat!, config.Flat!, config.Cpus);
    }

    private static Func<VcpuState[]> FlatPayload(GuestMemory memory, byte[] image, FlatImageSpec flat, int cpus) => () =>
    {
        // Every vCPU of a flat guest starts at the entry point; the guest tells them apart with CPUID's APIC ID.
        var bsp = FlatLoader.Load(memory, image, flat.Address, flat.Mode);
        var states = new VcpuState[cpus];
        for (int i = 0; i < cpus; i++) states[i] = i == 0 ? bsp : bsp.Clone();
        return states;
    };

    private static Func<VcpuState[]> LinuxPayload(GuestMemory memory, BootFile kernel, BootFile? initrd, string commandLine, ulong? rsdp) => () =>
    {
        using var kernelBytes = kernel.Read();
        using var initrdBytes = initrd?.Read();
        // Only the bootstrap processor starts at the kernel entry; application processors wait for INIT/SIPI.
        var bsp = LinuxLoader.Load(memory, new LinuxBootSpec
        {
            Kernel = kernelBytes.Memory,
            Initrd = initrdBytes?.Memory,
            CommandLine = commandLine,
            AcpiRsdp = rsdp,
        });
        return [bsp];
    };

    private static string MultibootCommandLine(VmConfig config) => new MultibootBootSpec { Kernel = default, KernelPath = config.Kernel!, Append = config.Append }.CommandLine;

    private static Func<VcpuState[]> MultibootPayload(GuestMemory memory, BootFile kernel, BootFile? initrd, VmConfig config) => () =>
    {
        using var kernelBytes = kernel.Read();
        using var initrdBytes = initrd?.Read();
        // As for Linux: the bootstrap processor starts at the entry, the others wait for INIT/SIPI.
        var bsp = MultibootLoader.Load(memory, new MultibootBootSpec
        {
            Kernel = kernelBytes.Memory,
            KernelPath = config.Kernel!,
            Append = config.Append,
            Module = initrdBytes?.Memory,
            ModulePath = config.Initrd,
        });
        return [bsp];
    };

    /// <summary>
    /// The guest's command line: the user's (default <c>console=ttyS0</c>) plus what the VMM knows about its
    /// platform (<see cref="RebootOption"/>) and about time.
    /// A software CPU must not make Linux calibrate the TSC with a timing loop (it fails when the host is
    /// loaded), so the TSC rate the guest's RDTSC counts at is given as <c>tsc_early_khz</c>, and <c>tsc=reliable</c>
    /// keeps the clocksource watchdog from dropping a TSC that is derived from the host's monotonic clock.
    /// Options the user already set win.
    /// </summary>
    public static string KernelCommandLine(VmConfig config, GuestClock? emulatedTsc)
    {
        string user = config.Append ?? "console=ttyS0";
        var parts = new List<string> { user };
        if (!user.Contains("reboot=", StringComparison.Ordinal)) parts.Add(RebootOption);
        if (emulatedTsc is null) return string.Join(' ', parts); // on KVM the TSC is the host's and Linux measures it well
        if (!user.Contains("tsc_early_khz=", StringComparison.Ordinal))
            parts.Add($"tsc_early_khz={emulatedTsc.TscHz / 1000}");
        if (!user.Contains("tsc=", StringComparison.Ordinal))
            parts.Add("tsc=reliable");
        return string.Join(' ', parts);
    }

    private static byte[] ReadFile(string path, string what)
    {
        if (SharpVmm.Block.HostFile.Problem(path, what, maxBytes: int.MaxValue) is { } problem) throw new ConfigurationException(problem);
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"cannot read {what} '{path}': {ex.Message}");
        }
    }
}

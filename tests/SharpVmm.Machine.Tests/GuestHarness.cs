using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Devices.Bus;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;

namespace SharpVmm.Machine.Tests;

/// <summary>Builds a VM around a guest assembled in the test, runs it to the end, and returns what it printed.</summary>
internal sealed class GuestHarness : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-test-").FullName;

    public static int Bitness(EntryMode mode) => mode switch { EntryMode.Real => 16, EntryMode.Protected => 32, _ => 64 };

    public static byte[] Assemble(Assembler a, EntryMode mode, ulong address)
    {
        return GuestCode.Assemble(a, mode == EntryMode.Real ? address & 0xF : address);
    }

    public string SerialPath => Path.Combine(_dir, "serial.txt");
    public string SerialOutput => File.Exists(SerialPath) ? File.ReadAllText(SerialPath) : "";

    public VirtualMachine Build(byte[] image, EntryMode mode, ulong address = 0x1000, AcceleratorKind accel = AcceleratorKind.Emu,
        int cpus = 1, UnmappedAccessPolicy unmapped = UnmappedAccessPolicy.Ignore, ulong memory = 64UL << 20)
    {
        string bin = Path.Combine(_dir, "guest.bin");
        File.WriteAllBytes(bin, image);
        return VmBuilder.Build(new VmConfig
        {
            Accelerator = accel,
            MemoryBytes = memory,
            Cpus = cpus,
            Flat = new FlatImageSpec(bin, address, mode),
            Serial = "file:" + SerialPath,
            UnmappedAccess = unmapped,
        });
    }

    /// <summary>Starts the VM and waits for its end; a guest that runs away fails the test instead of hanging it.</summary>
    public static VmExitResult RunToEnd(VirtualMachine vm, int timeoutSeconds = 60)
    {
        vm.Start();
        if (!vm.Exited.Wait(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            vm.Stop();
            Assert.Fail($"guest did not finish within {timeoutSeconds} s");
        }
        return vm.Exited.Result;
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}

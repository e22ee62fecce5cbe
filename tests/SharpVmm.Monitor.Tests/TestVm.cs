using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Machine;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Tests;

/// <summary>A VM (emu) running a small long-mode guest, with a QMP server on a UNIX socket in a private directory.</summary>
internal sealed class TestVm : IAsyncDisposable
{
    public const ulong Entry = 0x100000;
    public const ulong Counter = 0x8000;

    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-qmp-").FullName;

    public VirtualMachine Vm { get; }
    public QmpServer Server { get; }
    public string SocketPath => Path.Combine(_dir, "qmp.sock");

    private TestVm(Action<Assembler> program, int cpus, QmpServerOptions? options)
    {
        string bin = Path.Combine(_dir, "guest.bin");
        File.WriteAllBytes(bin, GuestCode.Assemble(64, program, Entry));
        Vm = VmBuilder.Build(new VmConfig
        {
            // The monitor is the subject, not the accelerator: emu runs everywhere, with or without /dev/kvm.
            Accelerator = AcceleratorKind.Emu,
            MemoryBytes = 16UL << 20,
            Cpus = cpus,
            Flat = new FlatImageSpec(bin, Entry, EntryMode.Long),
            Serial = "none",
        });
        Server = QmpServer.Start(Vm, SocketPath, options);
    }

    /// <summary>A guest that counts forever: <c>inc qword [Counter]</c> in a loop.</summary>
    public static TestVm Counting(int cpus = 1, QmpServerOptions? options = null) => new(GuestCode.CountingLoop(Counter), cpus, options);

    /// <summary>A guest that stops itself at once (cli; hlt): a guest-side shutdown.</summary>
    public static TestVm Halting() => new(a =>
    {
        a.cli();
        a.hlt();
    }, 1, null);

    public ulong Count => Vm.Memory.Read<ulong>(Counter);

    public void WaitForCount(ulong above)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Count <= above)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"the guest's counter stayed at {Count}, expected above {above}");
            Thread.Sleep(5);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Vm.Stop();
        await Server.DisposeAsync();
        Vm.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}

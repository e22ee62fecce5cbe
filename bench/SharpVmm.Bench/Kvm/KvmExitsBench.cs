using System.Diagnostics;
using System.Globalization;
using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.Io;
using SharpVmm.Kvm;
using SharpVmm.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Bench.Kvm;

/// <summary>
/// KVM exit-loop throughput: a real-mode guest does COUNT back-to-back <c>out</c>s to port 0x80, then writes its exit
/// code to the debug-exit port 0xF4 and halts. Prints exits per second of <see cref="KvmVcpu.Run"/>. The same bytes
/// (<c>--write-guest FILE</c>) run under QEMU for comparison, loaded at 0x1000 with CS = 0 (see bench/kvm-exits.sh).
/// </summary>
public sealed class KvmExitsBench : IBench
{
    public const ulong LoadAddress = 0x1000;
    public const ushort CountPort = 0x80, DebugExitPort = 0xF4;

    public string Name => "kvm-exits";
    public string Description => "KVM exit loop: exits/second of a guest doing back-to-back port writes ([--count N] [--irqchip] [--write-guest FILE])";

    public int Run(string[] args)
    {
        int count = 200_000;
        bool irqChip = false;
        string? writeGuest = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--count" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out count) && count >= 0:
                    i++;
                    break;
                case "--irqchip":
                    irqChip = true;
                    break;
                case "--write-guest" when i + 1 < args.Length:
                    writeGuest = args[++i];
                    break;
                default:
                    Console.Error.WriteLine($"kvm-exits: unknown or incomplete argument '{args[i]}'. {Description}");
                    return 2;
            }
        }

        byte[] guest = Assemble(count);
        if (writeGuest is not null)
        {
            File.WriteAllBytes(writeGuest, guest);
            Console.WriteLine($"wrote {guest.Length} bytes of guest code ({count} port writes) to {writeGuest}");
            return 0;
        }
        return Measure(guest, count, irqChip);
    }

    /// <summary>Flat real-mode code for address 0x1000: COUNT × out 0x80, then out 0xF4 with 0 and hlt.</summary>
    public static byte[] Assemble(int count)
    {
        var a = new Assembler(16);
        var loop = a.CreateLabel();
        var done = a.CreateLabel();
        a.mov(ecx, (uint)count);
        a.test(ecx, ecx);
        a.jz(done);
        a.Label(ref loop);
        a.@out((byte)CountPort, al);
        a.dec(ecx);
        a.jnz(loop);
        a.Label(ref done);
        a.mov(al, 0);
        a.@out((byte)DebugExitPort, al);
        a.hlt();
        var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), LoadAddress);
        return stream.ToArray();
    }

    private static int Measure(byte[] guest, int count, bool irqChip)
    {
        using var memory = GuestMemory.Create([(0UL, 0x10_0000UL)]);
        memory.Write(LoadAddress, guest);
        var bus = new CountingBus();
        using var accelerator = KvmAccelerator.Create(memory, bus, new KvmOptions { IrqChip = irqChip });
        using var vcpu = accelerator.CreateKvmVcpu(0);
        if (irqChip) bus.Vcpu = vcpu; // HLT would block in the kernel: the debug-exit write ends the run instead
        var s = vcpu.GetState();
        s.Cs = SegmentRegister.RealMode(0, 0xB);
        s.Ds = s.Es = s.Ss = SegmentRegister.RealMode(0);
        s.Rip = LoadAddress;
        vcpu.SetState(s);

        var sw = Stopwatch.StartNew();
        var exit = vcpu.Run();
        sw.Stop();
        var expected = irqChip ? VcpuExitReason.Kicked : VcpuExitReason.Halt;
        if (exit.Reason != expected || bus.ExitCode != 0 || bus.Writes != count)
        {
            Console.Error.WriteLine($"kvm-exits: guest ended with {exit}, exit code {bus.ExitCode}, {bus.Writes}/{count} port writes");
            return 1;
        }
        double seconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine(FormattableString.Invariant(
            $"sharpvmm-kvm: {count} port writes, {vcpu.ExitCount} exits in {seconds:F3} s = {vcpu.ExitCount / seconds:F0} exits/s (irqchip {(irqChip ? "on" : "off")})"));
        Console.WriteLine($"dirty-log probe: {(accelerator.ProbeDirtyLogWorks(out string detail) ? "works" : "unusable")}: {detail}");
        return 0;
    }

    /// <summary>Counts port 0x80 writes; the debug-exit write kicks the vCPU when HLT would block in the kernel (irqchip on).</summary>
    private sealed class CountingBus : IIoBus
    {
        public long Writes;
        public int ExitCode = -1;
        public KvmVcpu? Vcpu;

        public void PioWrite(ushort port, ReadOnlySpan<byte> data)
        {
            if (port == CountPort) Writes++;
            else if (port == DebugExitPort)
            {
                ExitCode = data[0];
                Vcpu?.Kick();
            }
        }

        public void PioRead(ushort port, Span<byte> data) => data.Fill(0xFF);
        public void MmioRead(ulong address, Span<byte> data) => data.Fill(0xFF);
        public void MmioWrite(ulong address, ReadOnlySpan<byte> data) { }
    }
}

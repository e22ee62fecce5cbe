using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Memory;

namespace SharpVmm.Kvm.Tests.Support;

/// <summary>A small VM for one test: guest RAM, a recording bus, a KVM accelerator and code assembled by Iced.</summary>
public sealed class KvmTestGuest : IDisposable
{
    public const ulong CodeAddress = 0x1000;

    public KvmTestGuest(KvmOptions? options = null, IReadOnlyList<(ulong Base, ulong Size)>? ram = null)
    {
        Memory = GuestMemory.Create(ram ?? [(0UL, 0x10_0000UL)]);
        Bus = new RecordingBus();
        try
        {
            Accelerator = KvmAccelerator.Create(Memory, Bus, options ?? new KvmOptions());
        }
        catch
        {
            Memory.Dispose();
            throw;
        }
    }

    public GuestMemory Memory { get; }
    public RecordingBus Bus { get; }
    public KvmAccelerator Accelerator { get; }

    /// <summary>Assembles <paramref name="build"/>'s code for <paramref name="bitness"/> at <paramref name="address"/> and writes it to RAM.</summary>
    public byte[] Load(int bitness, Action<Assembler> build, ulong address = CodeAddress)
    {
        byte[] code = GuestCode.Assemble(bitness, build, address);
        Memory.Write(address, code);
        return code;
    }

    /// <summary>Creates vCPU <paramref name="index"/> in real mode with CS = DS = ES = SS = 0 and IP = <paramref name="ip"/>.</summary>
    public KvmVcpu RealModeVcpu(int index = 0, ulong ip = CodeAddress, Action<VcpuState>? adjust = null)
    {
        var vcpu = Accelerator.CreateKvmVcpu(index);
        var s = vcpu.GetState();
        s.Cs = SegmentRegister.RealMode(0, 0xB);
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = SegmentRegister.RealMode(0);
        s.Rip = ip;
        s.Rflags = 0x2;
        s[Gpr.Rsp] = 0x8000;
        adjust?.Invoke(s);
        vcpu.SetState(s);
        return vcpu;
    }

    /// <summary>Creates vCPU <paramref name="index"/> in flat 32-bit protected mode (no paging) at <paramref name="ip"/>.</summary>
    public KvmVcpu ProtectedModeVcpu(int index = 0, ulong ip = CodeAddress)
    {
        var vcpu = Accelerator.CreateKvmVcpu(index);
        var s = vcpu.GetState();
        var code = new SegmentRegister { Base = 0, Limit = 0xFFFF_FFFF, Selector = 0x8, Type = 0xB, Present = true, S = true, Db = true, G = true };
        var data = code with { Selector = 0x10, Type = 0x3 };
        s.Cs = code;
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = data;
        s.Cr0 |= 1;
        s.Rip = ip;
        s.Rflags = 0x2;
        s[Gpr.Rsp] = 0x8000;
        vcpu.SetState(s);
        return vcpu;
    }

    public void Dispose()
    {
        Accelerator.Dispose();
        Memory.Dispose();
    }
}

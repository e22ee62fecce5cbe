using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

public class MemoryAndCodeTests
{
    [Fact]
    public void Self_modifying_code_in_the_same_block_sees_the_new_bytes()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            var patch = a.CreateLabel();
            a.lea(rbx, __[patch]);
            a.mov(__byte_ptr[rbx + 1], 0x22); // rewrite the immediate of the next mov
            a.Label(ref patch);
            a.mov(al, 0x11);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x22UL, s[Gpr.Rax] & 0xFF);
    }

    [Fact]
    public void Code_rewritten_between_runs_of_a_loop_is_redecoded()
    {
        using var g = new TestGuest();
        // A function at 0x30000 returning a constant; the loop calls it, then overwrites its immediate.
        g.Memory.Write(0x30000UL, new byte[] { 0xB8, 1, 0, 0, 0, 0xC3 }); // mov eax, 1; ret
        g.Load64(a =>
        {
            a.mov(rsi, 0x30000);
            a.call(rsi);
            a.mov(r8, rax);
            a.mov(__dword_ptr[rsi + 1], 2);
            a.call(rsi);
            a.mov(r9, rax);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(1UL, s[Gpr.R8]);
        Assert.Equal(2UL, s[Gpr.R9]);
    }

    [Fact]
    public void Vmm_writes_through_guest_memory_invalidate_cached_code()
    {
        using var g = new TestGuest();
        g.Memory.Write(0x30000UL, new byte[] { 0xB8, 1, 0, 0, 0, 0xF4 }); // mov eax, 1; hlt
        g.Load64(a => { a.mov(eax, 0x30000); a.jmp(rax); });
        Assert.Equal(1UL, g.RunToHalt()[Gpr.Rax]);
        g.Memory.Write(0x30001UL, 7u);
        var st = g.Cpu.GetState();
        st.Rip = 0x30000;
        g.Cpu.SetState(st);
        Assert.Equal(7UL, g.RunToHalt()[Gpr.Rax]);
    }

    [Fact]
    public void Guest_writes_are_recorded_in_the_dirty_bitmap_when_enabled()
    {
        using var g = new TestGuest();
        var dirty = g.Memory.Regions[0].Dirty;
        g.Load64(a =>
        {
            a.mov(rbx, 0x200000);
            a.mov(__qword_ptr[rbx], rax);      // first write installs a fast TLB entry while logging is off
            a.mov(ecx, 200000);                // spin so the CPU polls the logging switch
            var l = a.CreateLabel();
            a.Label(ref l);
            a.dec(ecx);
            a.jnz(l);
            a.mov(__qword_ptr[rbx + 8], rax);  // must be seen after logging was enabled
            a.mov(__qword_ptr[0x301000], rax);
            a.hlt();
        });
        dirty.Enabled = true;
        g.RunToHalt();
        Span<ulong> bits = stackalloc ulong[dirty.WordCount];
        dirty.Harvest(bits);
        Assert.True((bits[0x200 / 64] & (1UL << (0x200 % 64))) != 0);
        Assert.True((bits[0x301 / 64] & (1UL << (0x301 % 64))) != 0);
    }

    [Fact]
    public void Locked_increments_from_two_vcpus_are_atomic()
    {
        using var g = new TestGuest();
        using var cpu2 = g.Accel.CreateVcpu(1);
        const int n = 20000;
        g.Load64(a =>
        {
            a.mov(ecx, n);
            var l = a.CreateLabel();
            a.Label(ref l);
            a.@lock.inc(__qword_ptr[0x40000]);
            a.@lock.add(__qword_ptr[0x40008], 2);
            a.mov(eax, 1);
            a.@lock.xadd(__qword_ptr[0x40010], rax);
            a.dec(ecx);
            a.jnz(l);
            a.hlt();
        });
        var st = g.Cpu.GetState();
        st[Gpr.Rsp] = 0x70000;
        cpu2.SetState(st);
        VcpuExit e2 = default;
        var t = new Thread(() => e2 = cpu2.Run());
        t.Start();
        var e1 = g.Cpu.Run();
        t.Join();
        Assert.Equal(VcpuExitReason.Halt, e1.Reason);
        Assert.Equal(VcpuExitReason.Halt, e2.Reason);
        Assert.Equal(2UL * n, g.Memory.Read<ulong>(0x40000));
        Assert.Equal(4UL * n, g.Memory.Read<ulong>(0x40008));
        Assert.Equal(2UL * n, g.Memory.Read<ulong>(0x40010));
    }

    [Fact]
    public void Cmpxchg16b_swaps_when_equal_and_loads_when_not()
    {
        using var g = new TestGuest();
        g.Memory.Write(0x40000UL, 1UL);
        g.Memory.Write(0x40008UL, 2UL);
        g.Load64(a =>
        {
            a.mov(eax, 1); a.mov(edx, 2); a.mov(ebx, 3); a.mov(ecx, 4);
            a.@lock.cmpxchg16b(__xmmword_ptr[0x40000]);
            a.setz(r8b);
            a.xor(eax, eax); a.xor(edx, edx);
            a.@lock.cmpxchg16b(__xmmword_ptr[0x40000]);
            a.setz(r9b);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(1UL, s[Gpr.R8] & 0xFF);
        Assert.Equal(0UL, s[Gpr.R9] & 0xFF);
        Assert.Equal(3UL, g.Memory.Read<ulong>(0x40000));
        Assert.Equal(4UL, g.Memory.Read<ulong>(0x40008));
        Assert.Equal(3UL, s[Gpr.Rax]);
        Assert.Equal(4UL, s[Gpr.Rdx]);
    }

    [Fact]
    public void Rep_movs_and_stos_and_scas_work_across_pages()
    {
        using var g = new TestGuest();
        var src = new byte[10000];
        new Random(1).NextBytes(src);
        src[7777] = 0xEE;
        for (int i = 0; i < 7777; i++) if (src[i] == 0xEE) src[i] = 0;
        g.Memory.Write(0x100000UL, src);
        g.Load64(a =>
        {
            a.cld();
            a.mov(rsi, 0x100000); a.mov(rdi, 0x200000); a.mov(ecx, 10000);
            a.rep.movsb();
            a.mov(rdi, 0x300000); a.mov(eax, 0xABABABAB); a.mov(ecx, 2500);
            a.rep.stosd();
            a.mov(rdi, 0x100000); a.mov(al, 0xEE); a.mov(ecx, 10000);
            a.repne.scasb();
            a.mov(r8, rdi);
            a.std();
            a.mov(rsi, 0x100007); a.mov(rdi, 0x400007); a.mov(ecx, 8);
            a.rep.movsb();
            a.cld();
            a.hlt();
        });
        var s = g.RunToHalt();
        var copy = new byte[10000];
        g.Memory.Read(0x200000, copy);
        Assert.Equal(src, copy);
        Assert.Equal(0xABABABABu, g.Memory.Read<uint>(0x300000 + 9996));
        Assert.Equal(0x100000UL + 7778, s[Gpr.R8]);
        Assert.Equal(g.Memory.Read<ulong>(0x100000), g.Memory.Read<ulong>(0x400000));
    }
}

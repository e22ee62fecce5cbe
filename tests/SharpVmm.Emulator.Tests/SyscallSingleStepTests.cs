using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// Single-step across SYSCALL and SYSRET: the #DB trap follows the TF those instructions leave behind. SYSCALL with
/// TF masked by SFMASK traps nowhere in the kernel; SYSRET restoring TF from R11 traps at once, in user mode.
/// </summary>
public class SyscallSingleStepTests
{
    private const ulong DbHandler = 0x28000, Count = 0x9100, Log = 0x9200; // Log: [rip, cs] per trap
    private const ulong KernelEntry = 0x18000;

    private static void InstallLoggingDebugHandler(TestGuest g)
    {
        var a = new Assembler(64);
        a.push(rax);
        a.push(rbx);
        a.mov(rax, __qword_ptr[Count]);
        a.shl(rax, 4);
        a.mov(rbx, __qword_ptr[rsp + 16]);        // trap RIP
        a.mov(__qword_ptr[rax + (long)Log], rbx);
        a.mov(rbx, __qword_ptr[rsp + 24]);        // trap CS
        a.mov(__qword_ptr[rax + (long)(Log + 8)], rbx);
        a.inc(__qword_ptr[Count]);
        a.pop(rbx);
        a.pop(rax);
        a.iretq();
        g.Memory.Write(DbHandler, TestGuest.Assemble(a, DbHandler));
        g.Memory.Write(TestGuest.IdtBase + 16, (DbHandler & 0xFFFF) | ((ulong)TestGuest.KernelCs << 16) | (0x8EUL << 40) | ((DbHandler >> 16 & 0xFFFF) << 48));
        g.Memory.Write(TestGuest.IdtBase + 24, 0UL);
    }

    private static void SetUpSyscallMsrs(Assembler a, uint sfmask)
    {
        a.mov(ecx, 0xC0000081); // STAR: kernel CS 0x08, user base 0x18 (+16 = 0x2B code, +8 = 0x23 data)
        a.xor(eax, eax);
        a.mov(edx, 0x0018_0008);
        a.wrmsr();
        a.mov(ecx, 0xC0000082); // LSTAR
        a.mov(eax, (uint)KernelEntry);
        a.xor(edx, edx);
        a.wrmsr();
        a.mov(ecx, 0xC0000084); // SFMASK
        a.mov(eax, sfmask);
        a.wrmsr();
    }

    private static void DropToUser(Assembler a, Label user, int rflags)
    {
        a.push(TestGuest.UserDs);
        a.push((int)TestGuest.UserStackTop);
        a.push(rflags);
        a.push(TestGuest.UserCs);
        a.lea(rax, __[user]);
        a.push(rax);
        a.iretq();
    }

    [Fact]
    public void Syscall_masking_tf_traps_nowhere_and_sysret_restoring_it_traps_before_the_first_user_instruction()
    {
        using var g = new TestGuest();
        InstallLoggingDebugHandler(g);
        var k = new Assembler(64);
        k.mov(r12, rcx);              // the kernel runs untraced: TF masked on entry
        k.mov(r13, r11);
        k.sysretq();                  // R11 has TF: trap right after, at the user RIP, CS = user
        g.Memory.Write(KernelEntry, TestGuest.Assemble(k, KernelEntry));
        ulong afterSyscall = 0;
        g.Load64(a =>
        {
            SetUpSyscallMsrs(a, 0x300); // IF | TF
            var user = a.CreateLabel();
            DropToUser(a, user, 0x302);  // user mode with TF already on: every user instruction traps
            a.Label(ref user);
            a.syscall();                 // 1st user instruction: TF after it is 0 -> no trap in the kernel
            a.mov(ebx, 1);               // after SYSRET: trap before this, then one after it
            a.ud2();
        });
        // Find where the SYSCALL's return address is: the IRETQ lands on the SYSCALL.
        var dec = Decoder.Create(64, new ByteArrayCodeReader(ReadBytes(g, TestGuest.CodeBase, 256)), TestGuest.CodeBase);
        while (dec.IP < TestGuest.CodeBase + 256)
        {
            var ins = dec.Decode();
            if (ins.Mnemonic == Mnemonic.Syscall) { afterSyscall = ins.NextIP; break; }
        }
        Assert.NotEqual(0UL, afterSyscall);
        g.RunToHalt();
        var m = g.Memory;
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal(afterSyscall, g.Cpu.GetState()[Gpr.R12]);
        Assert.Equal(2UL, m.Read<ulong>(Count));
        Assert.Equal(afterSyscall, m.Read<ulong>(Log));              // trap right after SYSRET, before MOV EBX
        Assert.Equal((ulong)TestGuest.UserCs, m.Read<ulong>(Log + 8));
        Assert.Equal(afterSyscall + 5, m.Read<ulong>(Log + 16));     // after MOV EBX, 1
        Assert.Equal((ulong)TestGuest.UserCs, m.Read<ulong>(Log + 24));
    }

    [Fact]
    public void Sysret_clearing_tf_takes_no_trap()
    {
        using var g = new TestGuest();
        InstallLoggingDebugHandler(g);
        var k = new Assembler(64);
        k.pushfq();
        k.or(__qword_ptr[rsp], 0x100);
        k.popfq();                    // TF on in the kernel: the next two instructions trap
        k.mov(r11, 0x202);            // user RFLAGS without TF
        k.sysretq();                  // TF off after it: no trap
        g.Memory.Write(KernelEntry, TestGuest.Assemble(k, KernelEntry));
        g.Load64(a =>
        {
            SetUpSyscallMsrs(a, 0x200);
            var user = a.CreateLabel();
            DropToUser(a, user, 0x202);
            a.Label(ref user);
            a.syscall();
            a.mov(ebx, 1);
            a.ud2();
        });
        g.RunToHalt();
        var m = g.Memory;
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal(1UL, m.Read<ulong>(Count));   // after MOV R11 only
        Assert.Equal((ulong)TestGuest.KernelCs, m.Read<ulong>(Log + 8));
    }

    private static byte[] ReadBytes(TestGuest g, ulong at, int n)
    {
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = g.Memory.Read<byte>(at + (ulong)i);
        return b;
    }
}

using SharpVmm.Machine.Sandbox;

namespace SharpVmm.Machine.Tests.Sandbox;

public sealed class SeccompProgramTests
{
    private const int Pid = 4242;
    private static readonly SockFilter[] Program = SeccompProgram.Build(Pid);

    private static uint Verdict(string call, params ulong[] args)
    {
        var full = new ulong[6];
        args.CopyTo(full, 0);
        return BpfInterpreter.Run(Program, SyscallTable.Number(call), full);
    }

    [Fact]
    public void Every_listed_call_is_allowed_whatever_its_arguments()
    {
        foreach (string call in SandboxPolicy.Unconditional)
        {
            Assert.Equal(Seccomp.RetAllow, Verdict(call));
            Assert.Equal(Seccomp.RetAllow, Verdict(call, ulong.MaxValue, 0x1234_5678_9abc, 7));
        }
    }

    [Theory]
    [InlineData("execve")]
    [InlineData("execveat")]
    [InlineData("fork")]
    [InlineData("vfork")]
    [InlineData("ptrace")]
    [InlineData("process_vm_writev")]
    [InlineData("mount")]
    [InlineData("setuid")]
    [InlineData("init_module")]
    [InlineData("bpf")]
    [InlineData("perf_event_open")]
    [InlineData("keyctl")]
    [InlineData("chroot")]
    [InlineData("reboot")]
    [InlineData("kexec_load")]
    public void Calls_a_vmm_never_makes_trap(string call)
        => Assert.Equal(Seccomp.RetTrap, Verdict(call));

    [Fact]
    public void Clone_makes_threads_and_nothing_else()
    {
        const ulong threadFlags = 0x3d0f00; // glibc's pthread_create: CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
        Assert.Equal(Seccomp.RetAllow, Verdict("clone", threadFlags));
        Assert.Equal(Seccomp.RetTrap, Verdict("clone", 0x11 /* SIGCHLD: fork */));
        Assert.Equal(Seccomp.RetTrap, Verdict("clone", 0x4111 /* CLONE_VM|CLONE_VFORK|SIGCHLD: posix_spawn */));
        // clone3's flags are in memory the filter cannot read: ENOSYS makes glibc use clone.
        Assert.Equal(Seccomp.RetErrno | 38, Verdict("clone3", threadFlags));
    }

    [Fact]
    public void Signals_reach_only_this_process()
    {
        Assert.Equal(Seccomp.RetAllow, Verdict("kill", Pid, 6));
        Assert.Equal(Seccomp.RetTrap, Verdict("kill", 1, 9));
        Assert.Equal(Seccomp.RetTrap, Verdict("kill", unchecked((ulong)-1), 9));
        Assert.Equal(Seccomp.RetTrap, Verdict("kill", Pid | (1UL << 32), 9)); // the high word counts too
        Assert.Equal(Seccomp.RetAllow, Verdict("tgkill", Pid, Pid + 3, 34));
        Assert.Equal(Seccomp.RetTrap, Verdict("tgkill", Pid + 1, Pid + 1, 9));
    }

    [Fact]
    public void Arguments_narrow_the_rest()
    {
        Assert.Equal(Seccomp.RetAllow, Verdict("socket", 1 /* AF_UNIX */, 1));
        Assert.Equal(Seccomp.RetAllow, Verdict("socket", 10 /* AF_INET6 */, 1));
        Assert.Equal(Seccomp.RetTrap, Verdict("socket", 17 /* AF_PACKET */, 3));
        Assert.Equal(Seccomp.RetAllow, Verdict("prlimit64", 0, 7, 0, 0x7ffd_0000));
        Assert.Equal(Seccomp.RetTrap, Verdict("prlimit64", 0, 7, 0x7ffd_0000, 0));
        Assert.Equal(Seccomp.RetAllow, Verdict("sched_setaffinity", 0, 8, 0x7ffd_0000));
        Assert.Equal(Seccomp.RetTrap, Verdict("sched_setaffinity", 1, 8, 0x7ffd_0000));
        Assert.Equal(Seccomp.RetAllow, Verdict("sched_setscheduler", 77, 0 /* SCHED_OTHER */));
        Assert.Equal(Seccomp.RetTrap, Verdict("sched_setscheduler", 77, 1 /* SCHED_FIFO */));
    }

    [Fact]
    public void Every_call_of_qemus_sandbox_groups_is_refused_but_the_listed_exceptions()
    {
        // What -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny maps to: arguments a
        // hostile caller would use (another process, a real-time policy) never pass.
        foreach (var (key, calls) in SandboxPolicy.QemuGroups)
            foreach (string call in calls)
            {
                Assert.True(Seccomp.RetTrap == Verdict(call, Pid + 1, 1 /* SCHED_FIFO */, 0x7ffd_0000), $"{key}: {call} is not refused");
                Assert.DoesNotContain(call, SandboxPolicy.Unconditional);
            }
        foreach (var (call, _) in SandboxPolicy.QemuGroupExceptions)
            Assert.Contains(SandboxPolicy.QemuGroups, g => Array.IndexOf(g.Calls, call) >= 0);
        Assert.Equal(Seccomp.RetAllow, Verdict("sched_setaffinity", 0, 8, 0x7ffd_0000));
        Assert.Equal(Seccomp.RetAllow, Verdict("sched_setscheduler", 0, 0 /* SCHED_OTHER */));
    }

    [Fact]
    public void Foreign_architectures_and_x32_calls_kill_the_process()
    {
        Assert.Equal(Seccomp.RetKillProcess, BpfInterpreter.Run(Program, SyscallTable.Number("read"), arch: 0x4000_0003 /* AUDIT_ARCH_I386 */));
        Assert.Equal(Seccomp.RetKillProcess, BpfInterpreter.Run(Program, (int)(Seccomp.X32SyscallBit | 0 /* x32 read */)));
        Assert.Equal(Seccomp.RetKillProcess, BpfInterpreter.Run(Program, -1));
    }

    [Fact]
    public void Unknown_numbers_trap_and_the_program_fits_the_kernel()
    {
        Assert.Equal(Seccomp.RetTrap, BpfInterpreter.Run(Program, 463));
        Assert.Equal(Seccomp.RetTrap, BpfInterpreter.Run(Program, 5000));
        Assert.InRange(Program.Length, 1, Bpf.MaxInstructions);
    }

    [Fact]
    public void The_sigsys_table_names_each_call_in_its_slot()
    {
        byte[] table = SigsysReporter.BuildTable();
        string Slot(int i) => System.Text.Encoding.ASCII.GetString(table, i * SigsysReporter.Stride + 1, table[i * SigsysReporter.Stride]);
        Assert.Equal("sharpvmm: sandbox: system call execve (59) is not allowed: stopping the VM process (--sandbox off runs without the filter)\n", Slot(59));
        Assert.Contains(" ptrace (101) ", Slot(101));
        Assert.Contains("numbered", Slot(SyscallTable.Names.Length));
        for (int i = 0; i <= SyscallTable.Names.Length; i++) Assert.EndsWith("\n", Slot(i));
    }
}

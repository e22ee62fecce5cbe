namespace SharpVmm.Machine.Sandbox;

/// <summary>
/// Builds the sandbox's seccomp-BPF program from <see cref="SandboxPolicy"/>: a foreign architecture or an x32 call
/// kills the process outright; an allowed call passes; clone only makes threads; kill, tkill and tgkill reach only
/// this process; prlimit64 only reads; socket only opens the families listed; everything else traps (SIGSYS), so
/// <see cref="SigsysReporter"/> can say which call it was before the process dies.
/// </summary>
public static class SeccompProgram
{
    public static SockFilter[] Build(int processId)
    {
        var p = new List<SockFilter>(512)
        {
            Bpf.Load(Bpf.OffsetArch),
            Bpf.Jump(Bpf.JeqK, Seccomp.AuditArchX86_64, 1, 0),
            Bpf.Ret(Seccomp.RetKillProcess),
            Bpf.Load(Bpf.OffsetNr),
            Bpf.Jump(Bpf.JgeK, Seccomp.X32SyscallBit, 0, 1),
            Bpf.Ret(Seccomp.RetKillProcess),
        };
        // Each test is "equal: fall into the RET that follows, else skip it", so no jump ever spans more than the
        // checks of one call (a BPF jump offset is one byte).
        foreach (string name in SandboxPolicy.Unconditional)
        {
            p.Add(Bpf.Jump(Bpf.JeqK, (uint)SyscallTable.Number(name), 0, 1));
            p.Add(Bpf.Ret(Seccomp.RetAllow));
        }
        foreach (string name in SandboxPolicy.Enosys)
        {
            p.Add(Bpf.Jump(Bpf.JeqK, (uint)SyscallTable.Number(name), 0, 1));
            p.Add(Bpf.Ret(Seccomp.RetErrno | 38 /* ENOSYS */));
        }
        // clone(flags, ...): a thread (CLONE_THREAD) and nothing else: no fork, no new process of any kind.
        AddArgumentCheck(p, "clone", [Bpf.Load(Bpf.OffsetArgLow(0)), Bpf.Jump(Bpf.JsetK, (uint)SandboxPolicy.CloneThread, 0, 1)]);
        // kill(pid, sig) and tgkill(tgid, tid, sig): the runtime signals its own threads (GC suspension) and aborts
        // itself; nothing here signals another process. tkill(tid) has no process id: allowed for the runtime's own use.
        AddEquals(p, "kill", 0, (ulong)processId);
        AddEquals(p, "tgkill", 0, (ulong)processId);
        p.Add(Bpf.Jump(Bpf.JeqK, (uint)SyscallTable.Number("tkill"), 0, 1));
        p.Add(Bpf.Ret(Seccomp.RetAllow));
        // The runtime gives each new thread the process's CPU set and the default policy (SCHED_OTHER): a thread may
        // pin itself (pid 0), and no thread may be made real-time.
        AddEquals(p, "sched_setaffinity", 0, 0);
        AddEquals(p, "sched_setscheduler", 1, 0);
        // prlimit64(pid, resource, new, old): reading limits only (new == NULL).
        AddEquals(p, "prlimit64", 2, 0);
        // socket(family, ...): the families the VMM speaks.
        foreach (ulong family in SandboxPolicy.SocketFamilies) AddEquals(p, "socket", 0, family);
        p.Add(Bpf.Ret(Seccomp.RetTrap));
        if (p.Count > Bpf.MaxInstructions) throw new InvalidOperationException($"the seccomp program has {p.Count} instructions, over the kernel's {Bpf.MaxInstructions}");
        return [.. p];
    }

    /// <summary>
    /// For system call <paramref name="name"/>: runs <paramref name="test"/> (which must end in a jump whose "true"
    /// falls through to ALLOW and whose "false" skips it), then reloads the call number for the checks after it.
    /// </summary>
    private static void AddArgumentCheck(List<SockFilter> p, string name, SockFilter[] test)
    {
        // Layout: JEQ nr ? next : skip(block); test...; RET ALLOW; LD nr; (fall through to the next check)
        // A call that fails the test reloads the number and goes on: it ends at the final TRAP unless a later
        // check for the same call (another allowed value) lets it through.
        p.Add(Bpf.Jump(Bpf.JeqK, (uint)SyscallTable.Number(name), 0, (byte)(test.Length + 2)));
        p.AddRange(test);
        p.Add(Bpf.Ret(Seccomp.RetAllow));
        p.Add(Bpf.Load(Bpf.OffsetNr));
    }

    /// <summary>Allows <paramref name="name"/> when its argument <paramref name="arg"/> equals <paramref name="value"/> (all 64 bits).</summary>
    private static void AddEquals(List<SockFilter> p, string name, int arg, ulong value)
        => AddArgumentCheck(p, name,
        [
            Bpf.Load(Bpf.OffsetArgHigh(arg)),
            Bpf.Jump(Bpf.JeqK, (uint)(value >> 32), 0, 3), // to the reload of the number
            Bpf.Load(Bpf.OffsetArgLow(arg)),
            Bpf.Jump(Bpf.JeqK, (uint)value, 0, 1),
        ]);
}

using System.Runtime.InteropServices;
using SharpVmm.Core;

namespace SharpVmm.Machine.Sandbox;

/// <summary>
/// QEMU's -sandbox on, Firecracker's seccomp filters: once the VM is built, the process keeps only the system calls
/// <see cref="SandboxPolicy"/> lists, on every thread it has and will have (TSYNC; threads inherit the filter), with
/// no_new_privs. It cannot be undone: call it only in a process that is the VMM and nothing else.
/// </summary>
public static unsafe class ProcessSandbox
{
    private static int s_installed;

    /// <summary>Whether <see cref="Install"/> can work here: Linux on x86-64 with a kernel that has seccomp.</summary>
    public static bool IsSupported
    {
        get
        {
            if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return false;
            try { return File.ReadAllText("/proc/self/status").Contains("\nSeccomp:", StringComparison.Ordinal); }
            catch (IOException) { return false; }
        }
    }

    /// <summary>Installs the filter; throws <see cref="VmmException"/> with the kernel's reason when it cannot.</summary>
    public static void Install()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            throw new VmmException("sandbox: the seccomp filter is written for Linux on x86-64 (--sandbox off runs without it)");
        if (Interlocked.Exchange(ref s_installed, 1) != 0) return;
        SockFilter[] program = SeccompProgram.Build(Environment.ProcessId);
        InstallSigsysReporter();
        if (Libc.Prctl(SandboxNative.PrSetNoNewPrivs, 1, 0, 0, 0) != 0)
            throw new VmmException($"sandbox: prctl(PR_SET_NO_NEW_PRIVS) failed: {SandboxNative.LastError()} (--sandbox off runs without the filter)");
        fixed (SockFilter* filter = program)
        {
            var prog = new SandboxNative.SockFprog { Length = (ushort)program.Length, Filter = filter };
            long r = Libc.Syscall(SandboxNative.SysSeccomp, Seccomp.SetModeFilter, (nint)Seccomp.FilterFlagTsync, (nint)(&prog), 0);
            if (r < 0)
                throw new VmmException($"sandbox: the kernel refused the seccomp filter: {SandboxNative.LastError()} (--sandbox off runs without it)");
            if (r > 0)
                throw new VmmException($"sandbox: thread {r} could not take the seccomp filter (--sandbox off runs without it)");
        }
    }

    /// <summary>"2" (filter) once installed, as /proc/self/status says; for tests and diagnostics.</summary>
    public static string? StatusLine(int processId)
    {
        foreach (string line in File.ReadLines($"/proc/{processId}/status"))
            if (line.StartsWith("Seccomp:", StringComparison.Ordinal)) return line["Seccomp:".Length..].Trim();
        return null;
    }

    private static void InstallSigsysReporter()
    {
        byte[] table = SigsysReporter.BuildTable();
        // Code first (one page), then the message table; the whole mapping ends read+execute, never writable.
        nuint page = 4096;
        nuint size = page + ((nuint)table.Length + page - 1) / page * page;
        nint mem = Libc.Mmap(0, size, Libc.ProtRead | Libc.ProtWrite, Libc.MapPrivate | Libc.MapAnonymous, -1, 0);
        if (mem == -1) throw new VmmException($"sandbox: cannot map the SIGSYS reporter: {SandboxNative.LastError()}");
        byte[] code = SigsysReporter.BuildCode((ulong)(mem + (nint)page));
        byte[] restorer = SigsysReporter.RestorerCode;
        code.CopyTo(new Span<byte>((void*)mem, code.Length));
        restorer.CopyTo(new Span<byte>((void*)(mem + SigsysReporter.RestorerOffset), restorer.Length));
        table.CopyTo(new Span<byte>((void*)(mem + (nint)page), table.Length));
        if (Libc.Mprotect(mem, size, Libc.ProtRead | Libc.ProtExec) != 0)
            throw new VmmException($"sandbox: cannot protect the SIGSYS reporter: {SandboxNative.LastError()}");
        var act = new SandboxNative.KernelSigaction
        {
            Handler = mem,
            // On the alternate stack where the runtime set one up: a call refused on a thread near its stack's end
            // still gets its message. The restorer is never used (the handler does not return) but x86-64 requires one.
            Flags = SandboxNative.SaSiginfo | SandboxNative.SaOnstack | SandboxNative.SaRestorer,
            Restorer = mem + SigsysReporter.RestorerOffset,
            Mask = 0,
        };
        if (Libc.Syscall(SandboxNative.SysRtSigaction, SandboxNative.Sigsys, (nint)(&act), 0, 8) != 0)
            throw new VmmException($"sandbox: cannot install the SIGSYS handler: {SandboxNative.LastError()}");
    }
}

using System.Diagnostics;
using System.Globalization;

namespace SharpVmm.Cli.Qemu;

/// <summary>
/// QEMU's -daemonize: the launching process exits 0 only once the VM process is ready (monitor listening, pidfile
/// written), and with the VM's error otherwise. A .NET process cannot fork once its runtime threads exist, so the
/// launcher re-executes itself without -daemonize, passing the write end of a pipe; the child starts a new session,
/// sets up, points stdio at /dev/null (so whoever reads the launcher's output sees end of file) and writes one byte.
/// </summary>
internal static class QemuDaemon
{
    public const string ReadyFdVariable = "SHARPVMM_QEMU_READY_FD";

    public static int Launch(IReadOnlyList<string> args)
    {
        if (!MakePipe(out int readFd, out int writeFd))
        {
            Console.Error.WriteLine($"sharpvmm: -daemonize: cannot make a pipe: {Libc.Describe(Libc.LastErrno)}");
            return 1;
        }
        Libc.Fcntl(writeFd, Libc.FSetFd, 0); // the child inherits the write end only
        var start = new ProcessStartInfo(Environment.ProcessPath ?? "/proc/self/exe") { UseShellExecute = false };
        start.ArgumentList.Add(QemuPersonality.SubcommandName);
        foreach (string a in args)
            if (a is not ("-daemonize" or "--daemonize")) start.ArgumentList.Add(a);
        start.Environment[ReadyFdVariable] = writeFd.ToString(CultureInfo.InvariantCulture);
        Process child;
        try
        {
            child = Process.Start(start) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Console.Error.WriteLine($"sharpvmm: -daemonize: cannot start the VM process: {ex.Message}");
            return 1;
        }
        Libc.Close(writeFd);
        Span<byte> buf = stackalloc byte[1];
        nint n;
        do n = Libc.Read(readFd, buf);
        while (n < 0 && Libc.LastErrno == Libc.EINTR);
        Libc.Close(readFd);
        if (n == 1) return 0;
        // The child ended before it was ready; its error went to our stderr.
        child.WaitForExit();
        return child.ExitCode == 0 ? 1 : child.ExitCode;
    }

    private static unsafe bool MakePipe(out int readFd, out int writeFd)
    {
        int* fds = stackalloc int[2];
        bool made = Libc.Pipe2(fds, Libc.OCloexec) == 0;
        readFd = fds[0];
        writeFd = fds[1];
        return made;
    }

    private static string? Target(int fd)
    {
        try { return new FileInfo($"/proc/self/fd/{fd}").LinkTarget; }
        catch (IOException) { return null; }
    }

    /// <summary>In the re-executed child: the readiness pipe, or -1 when not daemonizing.</summary>
    public static int ReadyFd()
    {
        string? v = Environment.GetEnvironmentVariable(ReadyFdVariable);
        if (v is null || !int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int fd)) return -1;
        Environment.SetEnvironmentVariable(ReadyFdVariable, null);
        Libc.Fcntl(fd, Libc.FSetFd, Libc.FdCloexec); // not for anything we might start
        Libc.SetSid();
        return fd;
    }

    /// <summary>Detaches stdio and tells the launcher we are ready.</summary>
    public static void SignalReady(int fd)
    {
        int devNull = Libc.Open("/dev/null", Libc.ORdWr | Libc.OCloexec);
        if (devNull >= 0)
        {
            // The runtime's console streams write through duplicates of stdout and stderr: those must let go of
            // the launcher's pipes too, or its reader never sees end of file.
            var stdio = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i <= 2; i++)
                if (Target(i) is { } t && t.StartsWith("pipe:", StringComparison.Ordinal)) stdio.Add(t);
            foreach (string entry in Directory.GetFileSystemEntries("/proc/self/fd"))
            {
                if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n <= 2 || n == fd || n == devNull) continue;
                if (Target(n) is { } t && stdio.Contains(t)) Libc.Dup2(devNull, n);
            }
            for (int i = 0; i <= 2; i++) Libc.Dup2(devNull, i);
            Libc.Close(devNull);
        }
        Libc.Write(fd, [1]);
        Libc.Close(fd);
    }
}

using System.Runtime.InteropServices;

namespace SharpVmm.Devices.Serial;

/// <summary>
/// Puts the controlling terminal into raw mode (so keys reach the guest as typed: Ctrl-C, arrows, tab) and
/// restores it exactly once, whichever way the process ends: normal dispose, process exit, or an unhandled
/// exception. Only when stdin is a terminal; otherwise it does nothing.
/// </summary>
internal static class RawTerminal
{
    // struct termios on Linux/glibc is 60 bytes; a little slack costs nothing.
    private const int TermiosSize = 64;
    private const int TcsaNow = 0;
    private static readonly object Gate = new();
    private static byte[]? _saved;

    [DllImport("libc", SetLastError = true)]
    private static extern int isatty(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int tcgetattr(int fd, [Out] byte[] termios);

    [DllImport("libc", SetLastError = true)]
    private static extern int tcsetattr(int fd, int actions, [In] byte[] termios);

    [DllImport("libc")]
    private static extern void cfmakeraw([In, Out] byte[] termios);

    public static bool IsTerminal => isatty(0) == 1;

    public static void Enter()
    {
        lock (Gate)
        {
            if (_saved is not null || !IsTerminal) return;
            var saved = new byte[TermiosSize];
            if (tcgetattr(0, saved) != 0) return;
            var raw = (byte[])saved.Clone();
            cfmakeraw(raw);
            if (tcsetattr(0, TcsaNow, raw) != 0) return;
            _saved = saved;
            AppDomain.CurrentDomain.ProcessExit += (_, _) => Restore();
            AppDomain.CurrentDomain.UnhandledException += (_, _) => Restore();
        }
    }

    public static void Restore()
    {
        lock (Gate)
        {
            if (_saved is null) return;
            tcsetattr(0, TcsaNow, _saved);
            _saved = null;
        }
    }
}

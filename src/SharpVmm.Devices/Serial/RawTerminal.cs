using System.Runtime.InteropServices;

namespace SharpVmm.Devices.Serial;

/// <summary>
/// Puts the controlling terminal into raw mode (so keys reach the guest as typed: Ctrl-C, arrows, tab) and
/// restores it exactly once, whichever way the process ends: normal dispose, process exit, or an unhandled
/// exception. Only when stdin is a terminal; otherwise it does nothing.
/// </summary>
internal static class RawTerminal
{
    private static readonly object Gate = new();
    private static byte[]? _saved;

    public static bool IsTerminal => Libc.IsATty(0) == 1;

    public static void Enter()
    {
        lock (Gate)
        {
            if (_saved is not null || !IsTerminal) return;
            var saved = new byte[Libc.TermiosSize];
            if (Get(saved) != 0) return;
            var raw = (byte[])saved.Clone();
            MakeRaw(raw);
            if (Set(raw) != 0) return;
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
            Set(_saved);
            _saved = null;
        }
    }

    private static unsafe int Get(byte[] termios)
    {
        fixed (byte* p = termios) return Libc.TcGetAttr(0, p);
    }

    private static unsafe int Set(byte[] termios)
    {
        fixed (byte* p = termios) return Libc.TcSetAttr(0, Libc.TcsaNow, p);
    }

    private static unsafe void MakeRaw(byte[] termios)
    {
        fixed (byte* p = termios) Libc.CfMakeRaw(p);
    }
}

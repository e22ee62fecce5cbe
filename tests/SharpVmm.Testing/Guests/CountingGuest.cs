using System.Text;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Testing;

/// <summary>
/// A real-mode guest at 0x1000 that counts ticks in RAM (word at 0x3000), spins <c>delay</c> iterations between
/// ticks with the count in ECX, prints each tick as four hex digits and a newline on COM1, and after
/// <c>ticks</c> ticks exits through the debug port with code 0x2A ((0x2A &lt;&lt; 1) | 1 = 85).
/// Its whole output is therefore known in advance: a snapshot taken anywhere must continue it exactly.
/// Machine tests snapshot it inside the test process; the end-to-end tests run it in a real sharpvmm process.
/// </summary>
public static class CountingGuest
{
    public const int ExitCode = (0x2A << 1) | 1;

    public static byte[] Assemble(int ticks, int delay)
    {
        var a = new Assembler(16);
        var top = a.CreateLabel();
        var spin = a.CreateLabel();
        var digit = a.CreateLabel();
        var isDigit = a.CreateLabel();
        a.xor(ax, ax);
        a.mov(ds, ax);
        a.mov(__word_ptr[0x3000], ax);
        a.Label(ref top);
        a.mov(ecx, (uint)delay);
        a.Label(ref spin);
        a.dec(ecx);
        a.jnz(spin);
        a.inc(__word_ptr[0x3000]);
        a.mov(bx, __word_ptr[0x3000]);
        a.mov(si, 4);
        a.mov(dx, 0x3F8);
        a.Label(ref digit);
        a.rol(bx, 4);
        a.mov(al, bl);
        a.and(al, 0xF);
        a.add(al, (byte)'0');
        a.cmp(al, (byte)'9');
        a.jbe(isDigit);
        a.add(al, 7);
        a.Label(ref isDigit);
        a.@out(dx, al);
        a.dec(si);
        a.jnz(digit);
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
        a.cmp(__word_ptr[0x3000], (ushort)Math.Min(ticks, 0xFFFF)); // more than 65535 ticks: count until stopped
        a.jb(top);
        a.mov(al, 0x2A);
        a.@out(0xF4, al);
        a.cli();
        a.hlt();
        return GuestCode.Assemble(a, 0x1000);
    }

    /// <summary>Everything the guest prints when it runs to the end.</summary>
    public static string FullOutput(int ticks)
    {
        var sb = new StringBuilder();
        for (int i = 1; i <= ticks; i++) sb.Append($"{i:X4}\n");
        return sb.ToString();
    }

    /// <summary>Waits until <paramref name="read"/> returns at least <paramref name="lines"/> complete lines.</summary>
    public static void WaitForLines(Func<string> read, int lines, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (read().Count(c => c == '\n') < lines)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the guest printed fewer than {lines} lines in {timeout.TotalSeconds} s: '{read()}'");
            Thread.Sleep(20);
        }
    }
}

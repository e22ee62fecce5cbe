using Iced.Intel;
using SharpVmm.Boot;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Cli.Demo;

/// <summary>
/// The smallest useful guest: prints a line on COM1 and leaves through the debug-exit port with a code that
/// names its mode (real 0x10, protected 0x20, long 0x30, so the VMM exits 33, 65 or 97). Used by the README's
/// demo and by the end-to-end tests; built with Iced's assembler so the source is right here.
/// </summary>
public static class HelloGuest
{
    public const ushort SerialPort = 0x3F8;
    public const ushort DebugExitPort = 0xF4;

    public static byte ExitByte(EntryMode mode) => mode switch
    {
        EntryMode.Real => 0x10,
        EntryMode.Protected => 0x20,
        _ => 0x30,
    };

    /// <summary>The process exit code SharpVmm (or QEMU's isa-debug-exit) reports for this guest.</summary>
    public static int ExpectedExitCode(EntryMode mode) => (ExitByte(mode) << 1) | 1;

    public static string Message(EntryMode mode) => $"Hello from {mode.ToString().ToLowerInvariant()} mode!\n";

    public static byte[] Assemble(EntryMode mode, ulong address)
    {
        byte[] text = System.Text.Encoding.ASCII.GetBytes(Message(mode) + "\0");
        Assembler a;
        var msg = default(Label);
        var loop = default(Label);
        var done = default(Label);
        switch (mode)
        {
            case EntryMode.Real:
                // CS = address >> 4, IP = address & 0xF: addressing data through DS = CS keeps offsets small.
                a = new Assembler(16);
                msg = a.CreateLabel(); loop = a.CreateLabel(); done = a.CreateLabel();
                a.push(cs); a.pop(ds);
                a.mov(si, msg);
                a.mov(dx, SerialPort);
                a.Label(ref loop);
                a.lodsb();
                a.test(al, al);
                a.jz(done);
                a.@out(dx, al);
                a.jmp(loop);
                a.Label(ref done);
                a.mov(al, ExitByte(mode));
                a.@out(DebugExitPort, al);
                a.cli(); a.hlt();
                break;
            case EntryMode.Protected:
                a = new Assembler(32);
                msg = a.CreateLabel(); loop = a.CreateLabel(); done = a.CreateLabel();
                a.mov(esi, msg);
                a.mov(dx, SerialPort);
                a.Label(ref loop);
                a.lodsb();
                a.test(al, al);
                a.jz(done);
                a.@out(dx, al);
                a.jmp(loop);
                a.Label(ref done);
                a.mov(al, ExitByte(mode));
                a.@out(DebugExitPort, al);
                a.cli(); a.hlt();
                break;
            default:
                a = new Assembler(64);
                msg = a.CreateLabel(); loop = a.CreateLabel(); done = a.CreateLabel();
                a.lea(rsi, __[msg]);
                a.mov(dx, SerialPort);
                a.Label(ref loop);
                a.lodsb();
                a.test(al, al);
                a.jz(done);
                a.@out(dx, al);
                a.jmp(loop);
                a.Label(ref done);
                a.mov(al, ExitByte(mode));
                a.@out(DebugExitPort, al);
                a.cli(); a.hlt();
                break;
        }
        a.Label(ref msg);
        a.db(text);
        // Real mode code runs at IP = address & 0xF within its segment; the others at the linear address.
        ulong ip = mode == EntryMode.Real ? address & 0xF : address;
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), ip);
        return ms.ToArray();
    }
}

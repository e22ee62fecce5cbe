using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
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
    public const byte DebugExitPort = 0xF4;

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
        // Real mode code runs at IP = address & 0xF within its segment; the others at the linear address.
        ulong ip = mode == EntryMode.Real ? address & 0xF : address;
        // The message follows the code. Its address is an immediate of fixed size, so a first pass with a
        // placeholder gives the code's length and a second pass the final bytes.
        int codeLength = Code(mode, 0).Length;
        byte[] code = Code(mode, ip + (ulong)codeLength);
        return [.. code, .. text];

        byte[] Code(EntryMode m, ulong msg)
        {
            var a = new Assembler(m switch { EntryMode.Real => 16, EntryMode.Protected => 32, _ => 64 });
            var loop = a.CreateLabel();
            var done = a.CreateLabel();
            switch (m)
            {
                case EntryMode.Real:
                    a.push(cs); a.pop(ds); // DS = CS so the message's offset is its IP-relative address
                    a.mov(si, (ushort)msg);
                    break;
                case EntryMode.Protected:
                    a.mov(esi, (uint)msg);
                    break;
                default:
                    a.mov(rsi, msg);
                    break;
            }
            a.mov(dx, SerialPort);
            a.Label(ref loop);
            a.lodsb();
            a.test(al, al);
            a.jz(done);
            a.@out(dx, al);
            a.jmp(loop);
            a.Label(ref done);
            a.mov(al, ExitByte(m));
            a.@out(DebugExitPort, al);
            a.cli();
            a.hlt();
            using var ms = new MemoryStream();
            a.Assemble(new StreamCodeWriter(ms), ip);
            return ms.ToArray();
        }
    }
}

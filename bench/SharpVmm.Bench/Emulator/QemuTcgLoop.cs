using System.Diagnostics;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Bench.Emulator;

/// <summary>
/// The emu benches' guest program under QEMU TCG, for a side-by-side figure: a multiboot image (QEMU's -kernel
/// loads it at 1 MiB) whose 32-bit entry maps the first 64 MiB with 4 KiB pages as <see cref="EmuBenchGuest"/>
/// does, enters long mode, runs the program and ends QEMU through isa-debug-exit. The time is the whole QEMU run;
/// callers subtract the run of a program that does nothing (firmware and start-up).
/// </summary>
internal static class QemuTcgLoop
{
    public const string DefaultQemu = "/usr/bin/qemu-system-x86_64";
    private const uint Load = 0x100000, LongEntry = 0x101000, GdtAt = 0x100800, GdtrAt = 0x100900;
    private const uint Pml4 = 0x2FF0000, Pdpt = 0x2FF1000, Pd = 0x2FF2000, Pts = 0x3000000; // above the memory bench's 4..36 MiB
    private const ushort DebugExit = 0xF4;

    /// <summary>Wall seconds of one QEMU run of <paramref name="program"/>.</summary>
    public static double Seconds(string qemu, Action<Assembler> program)
    {
        string image = Path.Combine(Path.GetTempPath(), $"sharpvmm-bench-{Environment.ProcessId}.mb");
        File.WriteAllBytes(image, Image(program));
        try
        {
            var psi = new ProcessStartInfo(qemu)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var a in new[] { "-M", "pc", "-accel", "tcg", "-m", "128M", "-nodefaults", "-no-user-config", "-display", "none",
                         "-device", $"isa-debug-exit,iobase=0x{DebugExit:x},iosize=1", "-kernel", image })
                psi.ArgumentList.Add(a);
            var sw = Stopwatch.StartNew();
            using var p = Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(600_000)) { p.Kill(); throw new TimeoutException("qemu bench guest did not finish in 10 minutes"); }
            sw.Stop();
            // isa-debug-exit ends QEMU with (value << 1) | 1: the program writes 0, so 1 means it ran to its end.
            if (p.ExitCode != 1) throw new InvalidOperationException($"qemu bench guest exited with {p.ExitCode}: {err.Trim()}");
            return sw.Elapsed.TotalSeconds;
        }
        finally { File.Delete(image); }
    }

    private static byte[] Image(Action<Assembler> program)
    {
        var image = new byte[0x2000];
        // Multiboot header (flags bit 16: the load addresses below are valid, so a flat image loads as is).
        const uint magic = 0x1BADB002, flags = 0x10000;
        uint[] header = [magic, flags, unchecked(0u - magic - flags), Load, Load, 0, 0, Load + 0x40];
        Buffer.BlockCopy(header, 0, image, 0, header.Length * 4);

        var a = new Assembler(32);
        a.cli();
        // 32 page tables mapping 64 MiB, the directory, PDPT and PML4 (QEMU's RAM starts zeroed).
        a.xor(ecx, ecx);
        var fill = a.CreateLabel();
        a.Label(ref fill);
        a.mov(eax, ecx);
        a.shl(eax, 12);
        a.or(eax, 3);
        a.mov(__dword_ptr[ecx * 8 + (int)Pts], eax);
        a.inc(ecx);
        a.cmp(ecx, 32 * 512);
        a.jb(fill);
        a.xor(ecx, ecx);
        var dir = a.CreateLabel();
        a.Label(ref dir);
        a.mov(eax, ecx);
        a.shl(eax, 12);
        a.add(eax, Pts | 3);
        a.mov(__dword_ptr[ecx * 8 + (int)Pd], eax);
        a.inc(ecx);
        a.cmp(ecx, 32);
        a.jb(dir);
        a.mov(__dword_ptr[Pdpt], Pd | 3);
        a.mov(__dword_ptr[Pml4], Pdpt | 3);
        a.mov(eax, 0x620); // PAE, OSFXSR, OSXMMEXCPT
        a.mov(cr4, eax);
        a.mov(eax, Pml4);
        a.mov(cr3, eax);
        a.mov(ecx, 0xC0000080);
        a.rdmsr();
        a.or(eax, 0x100); // EFER.LME
        a.wrmsr();
        a.mov(eax, 0x80050033);
        a.mov(cr0, eax);
        a.AddInstruction(Instruction.Create(Code.Lgdt_m1632, new MemoryOperand(Register.None, (int)GdtrAt)));
        a.AddInstruction(Instruction.CreateBranch(Code.Jmp_ptr1632, 0x08, LongEntry));
        Place(image, a, 0x40, 32);

        ulong[] gdt = [0, 0x00AF_9B00_0000_FFFFUL, 0x00CF_9300_0000_FFFFUL];
        Buffer.BlockCopy(gdt, 0, image, (int)(GdtAt - Load), gdt.Length * 8);
        BitConverter.TryWriteBytes(image.AsSpan((int)(GdtrAt - Load)), (ushort)(gdt.Length * 8 - 1));
        BitConverter.TryWriteBytes(image.AsSpan((int)(GdtrAt - Load) + 2), GdtAt);

        var l = new Assembler(64);
        l.mov(eax, 0x10);
        l.mov(ds, ax);
        l.mov(es, ax);
        l.mov(ss, ax);
        l.mov(esp, 0x80000);
        program(l);
        l.xor(eax, eax);
        l.@out((byte)DebugExit, al);
        var stop = l.CreateLabel();
        l.Label(ref stop);
        l.hlt();
        l.jmp(stop);
        Place(image, l, (int)(LongEntry - Load), 64);
        return image;
    }

    private static void Place(byte[] image, Assembler a, int offset, int bitness)
    {
        var w = new Writer();
        a.Assemble(w, Load + (ulong)offset);
        if (offset + w.Bytes.Count > image.Length) throw new InvalidOperationException($"bench guest code ({bitness}-bit part) does not fit the image");
        w.Bytes.CopyTo(image, offset);
    }

    private sealed class Writer : CodeWriter
    {
        public List<byte> Bytes { get; } = [];
        public override void WriteByte(byte value) => Bytes.Add(value);
    }
}

using System.Globalization;
using System.Text;
using Iced.Intel;

namespace SharpVmm.Emulator.Jit;

/// <summary>
/// Debugging aids for translated code, both off unless asked for in the environment:
/// <c>SHARPVMM_JIT_PERFMAP=1</c> appends "start size name" lines to <c>perf-&lt;pid&gt;.map</c> in the temporary
/// directory (where <c>perf report</c> looks for JIT symbols), and <c>SHARPVMM_JIT_LOG=&lt;file&gt;</c> writes every
/// translated block disassembled by Iced. Shared by the vCPU threads of all VMs in the process.
/// </summary>
internal static class JitLog
{
    private static readonly object Lock = new();
    private static StreamWriter? _perfMap, _log;
    private static bool _opened;

    public static bool Enabled { get; } =
        Environment.GetEnvironmentVariable("SHARPVMM_JIT_PERFMAP") == "1" || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("SHARPVMM_JIT_LOG"));

    /// <summary>Records a block's code placed at <paramref name="exec"/>.</summary>
    public static void Translated(Block b, nint exec, ReadOnlySpan<byte> code, int covered)
    {
        lock (Lock)
        {
            Open();
            ulong phys = b.Key & 0xFFFF_FFFF_FFFFUL;
            string name = string.Create(CultureInfo.InvariantCulture, $"guest-phys-{phys:x}-bits{b.Key >> 56}-ops{covered}of{b.Ops.Length}");
            _perfMap?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(ulong)exec:x} {code.Length:x} {name}"));
            if (_log is null) return;
            _log.WriteLine(name + ":");
            var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(code.ToArray()), (ulong)exec);
            var formatter = new NasmFormatter();
            var output = new StringOutput();
            while (decoder.IP < (ulong)exec + (ulong)code.Length)
            {
                decoder.Decode(out var ins);
                formatter.Format(ins, output);
                _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {ins.IP:x16}  {output.ToStringAndReset()}"));
            }
            _log.WriteLine();
        }
    }

    private static void Open()
    {
        if (_opened) return;
        _opened = true;
        try
        {
            if (Environment.GetEnvironmentVariable("SHARPVMM_JIT_PERFMAP") == "1")
                _perfMap = new StreamWriter(Path.Combine(Path.GetTempPath(), $"perf-{Environment.ProcessId}.map"), append: true, Encoding.ASCII) { AutoFlush = true };
            string? log = Environment.GetEnvironmentVariable("SHARPVMM_JIT_LOG");
            if (!string.IsNullOrEmpty(log)) _log = new StreamWriter(log, append: false, new UTF8Encoding(false)) { AutoFlush = true };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"sharpvmm: cannot open the translator's log: {ex.Message}");
        }
    }
}

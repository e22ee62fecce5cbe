using System.Globalization;
using System.Text;
using Iced.Intel;

namespace SharpVmm.Emulator.Jit;

/// <summary>
/// A measuring aid (<c>SHARPVMM_JIT_STATS=2</c>): which guest instructions make translated code return to the
/// dispatcher early, by instruction form (Iced's Code: mnemonic and operand kinds), split into "not translated" and "fast path missed" (TLB miss, page crossing...).
/// It tells which forms are worth translating next. Off by default; costs a decode per early exit when on.
/// </summary>
internal sealed class ExitHistogram
{
    private readonly Dictionary<(Code, bool, bool), long> _counts = [];

    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("SHARPVMM_JIT_STATS") == "2";

    public unsafe void Record(ReadOnlySpan<byte> bytes, int bitness, bool miss)
    {
        var decoder = Iced.Intel.Decoder.Create(bitness, new ByteArrayCodeReader(bytes.ToArray()));
        decoder.Decode(out var ins);
        lock (_counts)
        {
            bool mem = ins.OpCount > 0 && ins.Op0Kind == OpKind.Memory || ins.OpCount > 1 && ins.Op1Kind == OpKind.Memory;
            _counts.TryGetValue((ins.Code, miss, mem), out long n);
            _counts[(ins.Code, miss, mem)] = n + 1;
        }
    }

    /// <summary>The most frequent <paramref name="top"/> entries, one per line.</summary>
    public string Report(int top)
    {
        KeyValuePair<(Code, bool, bool), long>[] all;
        lock (_counts) all = [.. _counts];
        Array.Sort(all, (x, y) => y.Value.CompareTo(x.Value));
        var sb = new StringBuilder();
        for (int i = 0; i < all.Length && i < top; i++)
        {
            var ((m, miss, mem), n) = (all[i].Key, all[i].Value);
            sb.Append(CultureInfo.InvariantCulture, $"emu jit exit: {n,12} {m.ToString().ToLowerInvariant(),-22} {(mem ? "mem" : "reg")} {(miss ? "fast path missed" : "not translated")}\n");
        }
        return sb.ToString();
    }
}

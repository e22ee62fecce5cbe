using System.Text;
using Iced.Intel;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>One generated case: the sequence, what it started from, and what the host CPU made of it.</summary>
internal sealed class DiffCase
{
    public required ulong Seed { get; init; }
    public required int Index { get; init; }
    public required CpuSnapshot Initial { get; init; }
    public required byte[] InitialData { get; init; }
    public required List<Instruction> Instructions { get; init; }
    /// <summary>The sequence's bytes followed by HLT, to be placed at <see cref="CodeAddress"/>.</summary>
    public required byte[] Code { get; init; }
    public required ulong CodeAddress { get; init; }
    public ulong HltAddress => CodeAddress + (ulong)Code.Length - 1;
    public required CpuSnapshot Expected { get; init; }
    public required byte[] ExpectedData { get; init; }
    public required ulong UndefinedFlags { get; init; }
    /// <summary>When set, the last instruction must raise this exception vector (a fault: nothing it would write changes).</summary>
    public int? FaultVector { get; init; }
    public ulong FaultAddress { get; init; }
    /// <summary>The host state, data buffer and undefined-flag mask after each instruction, for blaming one.</summary>
    /// <summary>After each step (one instruction, or a branch and the instruction it may skip): instructions so far and the host's state.</summary>
    public required List<(int Instructions, CpuSnapshot State, byte[] Data, ulong Undefined)> Steps { get; init; }

    /// <summary>The case cut after its first <paramref name="steps"/> steps (then HLT).</summary>
    public DiffCase Prefix(int steps)
    {
        var (count, state, data, undefined) = Steps[steps - 1];
        var last = Instructions[count - 1];
        int end = (int)(last.IP - CodeAddress) + last.Length;
        return new DiffCase
        {
            Seed = Seed, Index = Index, Initial = Initial, InitialData = InitialData, Instructions = Instructions[..count],
            Code = [.. Code.AsSpan(0, end), 0xF4], CodeAddress = CodeAddress, Expected = state, ExpectedData = data,
            UndefinedFlags = undefined, Steps = Steps[..steps],
        };
    }

    public string Listing()
    {
        var sb = new StringBuilder();
        var f = new NasmFormatter();
        f.Options.FirstOperandCharIndex = 8;
        var o = new StringOutput();
        foreach (var ins in Instructions)
        {
            f.Format(ins, o);
            int off = (int)(ins.IP - CodeAddress);
            string bytes = Convert.ToHexString(Code, off, ins.Length).ToLowerInvariant();
            sb.Append($"  {ins.IP:x8}  {bytes,-30} {o.ToStringAndReset()}\n");
        }
        sb.Append($"  {HltAddress:x8}  {"f4",-30} hlt\n");
        return sb.ToString();
    }
}

using Xunit.Abstractions;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// The emulator against the host CPU, one test per instruction class. See README.md in this folder for how a
/// failure is replayed.
/// </summary>
[Collection("Differential")]
public sealed class DifferentialTests(DiffFixture fx, ITestOutputHelper output)
{
    [Fact] public void Alu() => Run(nameof(Alu));
    [Fact] public void IncDecNegNot() => Run(nameof(IncDecNegNot));
    [Fact] public void Shift() => Run(nameof(Shift));
    [Fact] public void DoubleShift() => Run(nameof(DoubleShift));
    [Fact] public void Multiply() => Run(nameof(Multiply));
    [Fact] public void Divide() => Run(nameof(Divide));
    [Fact] public void DivideError() => Run(nameof(DivideError));
    [Fact] public void BitTest() => Run(nameof(BitTest));
    [Fact] public void BitScan() => Run(nameof(BitScan));
    [Fact] public void Tzcnt() => Run(nameof(Tzcnt));
    [Fact] public void Bmi1() => Run(nameof(Bmi1));
    [Fact] public void RepBsf() => Run(nameof(RepBsf));
    [Fact] public void Lzcnt() => Run(nameof(Lzcnt));
    [Fact] public void Popcnt() => Run(nameof(Popcnt));
    [Fact] public void ByteSwap() => Run(nameof(ByteSwap));
    [Fact] public void Movbe() => Run(nameof(Movbe));
    [Fact] public void Exchange() => Run(nameof(Exchange));
    [Fact] public void Conditional() => Run(nameof(Conditional));
    [Fact] public void Extend() => Run(nameof(Extend));
    [Fact] public void MovLea() => Run(nameof(MovLea));
    [Fact] public void String() => Run(nameof(String));
    [Fact] public void Branch() => Run(nameof(Branch));
    [Fact] public void Stack() => Run(nameof(Stack));
    [Fact] public void FlagOps() => Run(nameof(FlagOps));
    [Fact] public void SseInteger() => Run(nameof(SseInteger));
    [Fact] public void SseFloat() => Run(nameof(SseFloat));
    [Fact] public void SseFloatRounding() => Run(nameof(SseFloatRounding));
    [Fact] public void SseFloatMxcsr() => Run(nameof(SseFloatMxcsr));
    [Fact] public void Sse3() => Run(nameof(Sse3));

    [Fact]
    public void Every_class_has_a_test()
    {
        var tests = typeof(DifferentialTests).GetMethods().Where(m => m.GetCustomAttributes(typeof(FactAttribute), false).Length > 0)
            .Select(m => m.Name).ToHashSet();
        foreach (var name in InstructionClasses.Names) Assert.Contains(name, tests);
    }

    [Fact]
    public void Comparison_catches_an_emulator_that_skips_an_instruction()
    {
        // Negative control: the emulator runs each case with its last instruction replaced by NOPs, which must
        // show up as differences in nearly every case. A harness that compared nothing would pass here.
        var cls = InstructionClasses.Create("Alu");
        int caught = 0;
        const int n = 60;
        for (int k = 0; k < n; k++)
        {
            var c = fx.Builder.Build(cls, DiffRandom.CaseSeed(0xC0FFEE, k), k);
            var code = (byte[])c.Code.Clone();
            var last = c.Instructions[^1];
            code.AsSpan((int)(last.IP - c.CodeAddress), last.Length).Fill(0x90);
            var e = fx.Emu.Run(c.Initial, code, c.CodeAddress, c.InitialData, TimeSpan.FromSeconds(5));
            Assert.Null(e.Error);
            if (DiffCompare.Differences(c, e, cls).Count > 0) caught++;
        }
        Assert.True(caught >= n * 8 / 10, $"only {caught} of {n} sabotaged cases were noticed");
    }

    private void Run(string name)
    {
        string? failure = DiffRun.Execute(InstructionClasses.Create(name), fx, output);
        if (failure is not null) Assert.Fail(failure);
    }
}

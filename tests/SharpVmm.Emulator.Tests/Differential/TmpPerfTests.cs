using System.Diagnostics;
using Xunit.Abstractions;
namespace SharpVmm.Emulator.Tests.Differential;
[Collection("Differential")]
public sealed class TmpPerfTests(DiffFixture fx, ITestOutputHelper output)
{
    [Fact]
    public void Perf()
    {
        foreach (var name in new[]{"Alu","Shift","String","SseFloat"}) {
        var cls = InstructionClasses.Create(name);
        cls.Restrict(fx.HostFeatures);
        for (int k = 0; k < 200; k++) fx.Builder.Build(cls, (ulong)k, k);
        var sw = Stopwatch.StartNew(); int n = 0;
        for (int k = 0; k < 2000; k++) n += fx.Builder.Build(cls, (ulong)k, k).Instructions.Count;
        output.WriteLine($"{name}: cand {fx.Builder.Candidates} " + string.Join(",", fx.Builder.Refusals.Select(kv => kv.Key + "=" + kv.Value))); fx.Builder.Refusals.Clear();
        output.WriteLine($"{name}: {sw.Elapsed.TotalMilliseconds / 2000:0.000} ms/case, {n} instrs");
        }
        {
        var cls = InstructionClasses.Create("Alu");
        var sw = Stopwatch.StartNew();
        for (int k = 0; k < 2000; k++) { var ctx = new CaseContext(new DiffRandom((ulong)k), fx.Native); cls.Init(ctx); }
        output.WriteLine($"init: {sw.Elapsed.TotalMilliseconds / 2000:0.000} ms");
        sw.Restart();
        var ctx2 = new CaseContext(new DiffRandom(1), fx.Native); cls.Init(ctx2);
        var list = new List<Iced.Intel.Instruction>();
        for (int k = 0; k < 2000; k++) { list.Clear(); cls.Next(ctx2, list); }
        output.WriteLine($"next: {sw.Elapsed.TotalMilliseconds / 2000:0.000} ms");
        sw.Restart();
        for (int k = 0; k < 2000; k++) { var w = new ByteWriter(); var enc = Iced.Intel.Encoder.Create(64, w); enc.TryEncode(list[^1], fx.Native.CodeAddress, out _, out _); }
        output.WriteLine($"encode: {sw.Elapsed.TotalMilliseconds / 2000:0.000} ms");
        sw.Restart();
        var f = new Iced.Intel.InstructionInfoFactory();
        for (int k = 0; k < 2000; k++) { var info = f.GetInfo(list[^1]); foreach (var u in info.GetUsedRegisters()) {} }
        output.WriteLine($"info: {sw.Elapsed.TotalMilliseconds / 2000:0.000} ms");
        }
        var input = new CpuSnapshot();
        var sw2 = Stopwatch.StartNew();
        for (int k = 0; k < 20000; k++) fx.Native.Run(input, [0x90], fx.Native.CodeAddress);
        output.WriteLine($"native run: {sw2.Elapsed.TotalMilliseconds / 20000 * 1000:0.0} us");
    }
}

using BenchmarkDotNet.Running;

namespace SharpVmm.Bench;

/// <summary>
/// <c>-- list</c> shows every bench; <c>-- NAME args</c> runs a side-by-side bench; <c>-- bdn [BenchmarkDotNet args]</c>
/// runs the micro-benchmarks of hot paths.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "bdn")
        {
            BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args[1..]);
            return 0;
        }
        var benches = new SortedDictionary<string, IBench>(StringComparer.Ordinal);
        foreach (var t in typeof(Program).Assembly.GetTypes())
            if (t is { IsClass: true, IsAbstract: false } && typeof(IBench).IsAssignableFrom(t) && Activator.CreateInstance(t) is IBench b)
                benches[b.Name] = b;
        if (args.Length == 0 || args[0] is "list" or "--help" or "-h")
        {
            Console.WriteLine("usage: SharpVmm.Bench NAME [args] | bdn [BenchmarkDotNet args]");
            foreach (var b in benches.Values) Console.WriteLine($"  {b.Name,-20} {b.Description}");
            return args.Length == 0 ? 2 : 0;
        }
        if (!benches.TryGetValue(args[0], out var bench))
        {
            Console.Error.WriteLine($"unknown bench '{args[0]}'; run with 'list' to see them");
            return 2;
        }
        return bench.Run(args[1..]);
    }
}

namespace SharpVmm.Bench;

/// <summary>
/// A hand-run benchmark that drives whole programs (SharpVmm beside QEMU) rather than a BenchmarkDotNet method.
/// Any public class implementing this with a parameterless constructor is found by name.
/// </summary>
public interface IBench
{
    /// <summary>The name given on the command line: <c>dotnet run -c Release --project bench/SharpVmm.Bench -- NAME</c>.</summary>
    string Name { get; }
    string Description { get; }
    int Run(string[] args);
}

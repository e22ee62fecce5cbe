using SharpFuzz;

namespace SharpVmm.Fuzz;

/// <summary>
/// <c>SharpVmm.Fuzz TARGET</c>: AFL++'s fork server drives the target in this process (SharpFuzz); an exception
/// the target does not expect (see <see cref="FuzzTargets"/>) is a crash. <c>SharpVmm.Fuzz TARGET FILE...</c>
/// runs files once each (to reproduce a finding without AFL).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["seeds", string dir])
        {
            SeedMaker.Write(dir);
            return 0;
        }
        if (args.Length == 0 || FuzzTargets.Find(args[0]) is not { } target)
        {
            Console.Error.WriteLine($"usage: SharpVmm.Fuzz TARGET [FILE...] | seeds DIR; targets: {string.Join(", ", FuzzTargets.Names)}");
            return 2;
        }
        if (args.Length > 1)
        {
            foreach (string file in args[1..])
            {
                target(File.ReadAllBytes(file));
                Console.WriteLine($"{file}: ok");
            }
            return 0;
        }
        Fuzzer.Run(stream =>
        {
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            target(copy.ToArray());
        });
        return 0;
    }
}

using SharpVmm.Block;

namespace SharpVmm.Block.CrashWriter;

/// <summary>
/// Usage: CrashWriter IMAGE SEED. Performs a deterministic sequence of writes, one per slot, (write i goes to slot
/// Slot(seed, i) with Data(seed, i)), flushing every few writes and printing "flushed N" once writes 0..N-1 are
/// durable. The parent kills it at a random moment and checks what is on disk.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var seed = int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
        using var img = ImageFactory.Open(args[0]);
        var plan = new WritePlan(seed, img.Size);
        Console.Out.Flush();
        for (var i = 0; i < plan.Slots; i++)
        {
            var (off, data) = plan.Write(i);
            if (data == null) img.WriteZeroes(off, plan.SlotSize, unmap: true);
            else img.Write(off, data);
            if (i % 7 == 6)
            {
                img.Flush();
                Console.WriteLine($"flushed {i + 1}");
                Console.Out.Flush();
            }
        }
        img.Flush();
        Console.WriteLine($"flushed {plan.Slots}");
        return 0;
    }
}

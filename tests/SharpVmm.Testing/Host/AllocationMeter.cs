namespace SharpVmm.Testing;

/// <summary>
/// Measures what a hot path allocates on the calling thread, without counting what the runtime itself happens to
/// allocate there (a tier-up, a lazily built runtime structure, a first-call stub): those happen once, while an
/// allocation in the code under test happens in every batch. So the batch is run several times and the least
/// any run allocated is the answer; it is 0 only if the code under test allocates nothing per call.
/// </summary>
public static class AllocationMeter
{
    public static long LeastBytesPerBatch(Action batch, int batches = 5)
    {
        long least = long.MaxValue;
        for (int i = 0; i < batches && least > 0; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            batch();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }
}

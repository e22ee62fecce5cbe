using SharpVmm.Memory.Host;

namespace SharpVmm.Memory.Tests;

/// <summary>Two guests' RAM merged by KSM stays two guests' RAM: a write gets its own copy.</summary>
public sealed class KsmCopyOnWriteTests
{
    private const int Pages = 512;

    private static void FillPage(GuestMemory m, int page, byte seed)
    {
        var data = new byte[4096];
        new Random(page * 31 + seed).NextBytes(data);
        m.Write((ulong)page << 12, data);
    }

    [NeedsFact(Need.Ksm)]
    public void A_write_to_a_merged_page_gets_its_own_copy_and_the_other_guest_keeps_its_data()
    {
        var options = new GuestMemoryOptions { Merge = true };
        using var a = GuestMemory.Create(4UL << 20, options);
        using var b = GuestMemory.Create(4UL << 20, options);
        // The same content in both, different from page to page (so nothing merges within one instance).
        for (int p = 0; p < Pages; p++)
        {
            FillPage(a, p, 1);
            FillPage(b, p, 1);
        }
        long before = ProcessMemory.Read().KsmMergingPages;

        using (var lease = KsmSettingsLease.Acquire(new KsmHost(), TimeSpan.FromMinutes(5)))
        {
            lease.RunFast(pagesToScan: 5000, sleepMs: 10);
            long merged = WaitForMerging(before + 2 * Pages - 8, TimeSpan.FromSeconds(90));
            Assert.True(merged >= before + 2 * Pages - 8, $"KSM merged only {merged - before} of {2 * Pages} pages");

            var expectedOld = b.GetReadOnlySpan(7UL << 12, 4096).ToArray();
            Assert.Equal(expectedOld, a.GetReadOnlySpan(7UL << 12, 4096).ToArray());
            a.Write(7UL << 12, "written by guest A"u8);
            a.Write((7UL << 12) + 4000, 0xDEADBEEFUL);

            Assert.Equal("written by guest A"u8.ToArray(), a.GetReadOnlySpan(7UL << 12, 18).ToArray());
            Assert.Equal(0xDEADBEEFUL, a.Read<ulong>((7UL << 12) + 4000));
            Assert.Equal(expectedOld, b.GetReadOnlySpan(7UL << 12, 4096).ToArray());
            Assert.Equal(expectedOld[18..4000], a.GetReadOnlySpan((7UL << 12) + 18, 4000 - 18).ToArray()); // the rest of A's copy
            // The written page left the merge (copy on write); the others are still shared.
            // The kernel counts the unmerge when ksmd next passes the page, not at the fault: give it a few scans.
            long after = ProcessMemory.Read().KsmMergingPages;
            for (var until = DateTime.UtcNow.AddSeconds(30); after >= merged && DateTime.UtcNow < until; after = ProcessMemory.Read().KsmMergingPages)
                Thread.Sleep(100);
            Assert.True(after < merged, $"ksm_merging_pages stayed at {after}");
            Assert.True(after >= merged - 2, $"ksm_merging_pages fell from {merged} to {after}: more than the written page left");
            for (int p = 0; p < Pages; p += 37)
                if (p != 7) Assert.Equal(b.GetReadOnlySpan((ulong)p << 12, 4096).ToArray(), a.GetReadOnlySpan((ulong)p << 12, 4096).ToArray());
        }
    }

    private static long WaitForMerging(long atLeast, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        long n;
        while ((n = ProcessMemory.Read().KsmMergingPages) < atLeast && DateTime.UtcNow < deadline) Thread.Sleep(200);
        // KSM may still be merging the last few pages: settle (no change for a second) so the count the copy-on-write
        // check compares against is not overtaken by a late merge.
        for (long last = -1; n != last && DateTime.UtcNow < deadline; n = ProcessMemory.Read().KsmMergingPages)
        {
            last = n;
            Thread.Sleep(1000);
        }
        return n;
    }
}

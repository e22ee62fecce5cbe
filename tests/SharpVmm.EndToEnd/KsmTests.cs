using SharpVmm.Memory.Host;
using Xunit.Abstractions;

namespace SharpVmm.EndToEnd;

/// <summary>Identical idle Debian guests share their identical pages through KSM when merge=on, and only then.</summary>
public sealed class KsmTests(ITestOutputHelper output)
{
    private const string Ready = "SHARPVMM-IDLE";

    [NeedsFact(Need.LinuxGuest, Need.Ksm)]
    public void Two_idle_guests_with_merge_on_share_pages_and_use_less_memory_while_a_merge_off_twin_does_not()
    {
        // Exclusive use of KSM's settings for the test; every one is put back afterwards, whatever happens.
        using var lease = KsmSettingsLease.Acquire(new KsmHost(), TimeSpan.FromMinutes(10));
        if (lease.Host.Run == 1) lease.Host.Write("run", 0); // the "before" figures must be unmerged ones
        var guests = new List<GuestVmProcess>();
        try
        {
            string cmd = $"echo {Ready}; exec sleep 600";
            // The merge=off guest is identical to the other two: were its RAM mergeable, it would share their pages.
            foreach (var (name, merge) in new[] { ("on-1", "on"), ("on-2", "on"), ("off", "off") })
                guests.Add(new GuestVmProcess(name, cmd, "--memory", $"256M,merge={merge}"));
            foreach (var g in guests) g.WaitFor(Ready, TimeSpan.FromSeconds(1500)); // ~1 min on a quiet host
            Thread.Sleep(3000); // the last guest's init settles

            var before = guests.Select(g => ProcessMemory.Read(g.Pid.ToString())).ToArray();
            lease.RunFast(pagesToScan: 10000, sleepMs: 20);

            // Merging needs two scans of every page (checksum, then the trees): wait until it stops growing.
            long last = -1;
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5000);
                long now = guests.Take(2).Sum(g => ProcessMemory.Read(g.Pid.ToString()).KsmMergingPages);
                output.WriteLine($"merge=on pair: {now} pages merged");
                if (now > 0 && now - last < Math.Max(64, now / 50)) break;
                last = now;
            }
            var after = guests.Select(g => ProcessMemory.Read(g.Pid.ToString())).ToArray();
            for (int i = 0; i < guests.Count; i++)
                output.WriteLine($"{guests[i].Name}: PSS {before[i].ProportionalBytes >> 20} -> {after[i].ProportionalBytes >> 20} MiB, " +
                    $"RSS {before[i].ResidentBytes >> 20} -> {after[i].ResidentBytes >> 20} MiB, KSM-merged pages {before[i].KsmMergingPages} -> {after[i].KsmMergingPages}");
            foreach (var g in guests) Assert.False(g.HasExited, $"{g.Name} exited: {g.Errors}");

            long onMerged = after[0].KsmMergingPages + after[1].KsmMergingPages;
            long onBefore = before[0].ProportionalBytes + before[1].ProportionalBytes, onAfter = after[0].ProportionalBytes + after[1].ProportionalBytes;
            long offBefore = before[2].ProportionalBytes, offAfter = after[2].ProportionalBytes;
            // Well above zero: at least 32 MiB of the two guests' pages are shared.
            Assert.True(onMerged >= 8192, $"KSM merged only {onMerged} pages of the merge=on guests");
            Assert.True(after[0].KsmMergingPages > 0 && after[1].KsmMergingPages > 0, "each merge=on guest shares pages");
            // Their summed memory (PSS: a shared page counts once across its sharers) falls by a good part of that.
            Assert.True(onAfter <= onBefore - (16L << 20), $"merge=on guests: PSS {onBefore >> 20} -> {onAfter >> 20} MiB");
            // merge=off: never merged although its twins' pages are, and its memory does not fall.
            Assert.Equal(0, after[2].KsmMergingPages);
            Assert.True(offAfter >= offBefore - (4L << 20), $"merge=off guest: PSS {offBefore >> 20} -> {offAfter >> 20} MiB");
        }
        finally
        {
            foreach (var g in guests) g.Dispose();
        }
    }
}

using SharpVmm.Memory.Host;

namespace SharpVmm.Memory.Tests;

public sealed class HostMemoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-ksm-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Discard_frees_pages_reads_back_zeros_and_refuses_anything_outside_ram()
    {
        using var m = GuestMemory.Create([(0UL, 0x10000UL), (0x20000UL, 0x10000UL)]);
        var seen = new List<(ulong, ulong)>();
        m.WriteObserver = (g, l) => seen.Add((g, l));
        for (ulong p = 0; p < 0x10000; p += 4096) m.Write(p, 0x55UL);
        ulong resident = m.ResidentBytes();
        Assert.Equal(0x10000UL, resident);
        m.Regions[0].Dirty.Enabled = true;
        m.Discard(0x4000, 0x8000);
        Assert.Equal(0x8000UL, m.ResidentBytes());
        Assert.True(m.Regions[0].Dirty.IsDirty(4)); // migration resends the (now zero) pages
        Assert.Contains((0x4000UL, 0x8000UL), seen);
        Assert.Equal(0UL, m.Read<ulong>(0x4000));
        Assert.Equal(0x55UL, m.Read<ulong>(0xC000));
        Assert.Throws<GuestMemoryException>(() => m.Discard(0x10000, 0x1000));   // the hole
        Assert.Throws<GuestMemoryException>(() => m.Discard(0xF000, 0x2000));    // runs into the hole
        Assert.Throws<GuestMemoryException>(() => m.Discard(0x1001, 0x1000));    // unaligned
        Assert.Throws<GuestMemoryException>(() => m.Discard(ulong.MaxValue - 0xFFF, 0x1000));
        Assert.Equal(0x55UL, m.Read<ulong>(0xF000));
    }

    [Fact]
    public void Prealloc_backs_every_page_up_front_and_hugepages_are_advised_when_the_host_has_them()
    {
        using (var m = GuestMemory.Create(8UL << 20, new GuestMemoryOptions { Prealloc = true }))
            Assert.Equal(8UL << 20, m.ResidentBytes());
        using (var lazy = GuestMemory.Create(8UL << 20))
            Assert.Equal(0UL, lazy.ResidentBytes());
        if (TransparentHugePages.Mode() is "always" or "madvise")
        {
            using var h = GuestMemory.Create(8UL << 20, new GuestMemoryOptions { HugePages = true });
            Assert.True(h.Options.HugePages);
        }
        else
        {
            var ex = Assert.Throws<GuestMemoryException>(() => GuestMemory.Create(8UL << 20, new GuestMemoryOptions { HugePages = true }));
            Assert.Contains("hugepages=on", ex.Message);
        }
    }

    [Fact]
    public void Thp_mode_is_read_from_the_bracketed_word()
    {
        string f = Path.Combine(_dir, "enabled");
        File.WriteAllText(f, "always madvise [never]\n");
        Assert.Equal("never", TransparentHugePages.Mode(f));
        File.WriteAllText(f, "[always] madvise never\n");
        Assert.Equal("always", TransparentHugePages.Mode(f));
        Assert.Null(TransparentHugePages.Mode(Path.Combine(_dir, "missing")));
    }

    [Fact]
    public void Ksm_host_reads_writes_and_restores_a_sysfs_directory()
    {
        var missing = new KsmHost(Path.Combine(_dir, "none"));
        Assert.False(missing.Available);
        Assert.Contains("CONFIG_KSM", Assert.Throws<HostMemoryException>(() => missing.ReadAll()).Message);

        File.WriteAllText(Path.Combine(_dir, "run"), "0\n");
        File.WriteAllText(Path.Combine(_dir, "pages_to_scan"), "100\n");
        File.WriteAllText(Path.Combine(_dir, "pages_sharing"), "42\n");
        File.WriteAllText(Path.Combine(_dir, "advisor_mode"), "none [scan-time]\n"); // not a number: left out
        var k = new KsmHost(_dir);
        Assert.True(k.Available);
        var all = k.ReadAll();
        Assert.Equal(3, all.Count);
        Assert.Equal(42, all["pages_sharing"]);
        var saved = k.SaveTunables();
        Assert.Equal(2, saved.Count); // run, pages_to_scan
        k.Write("run", 1);
        k.Write("pages_to_scan", 5000);
        Assert.Equal(1, k.Run);
        k.Restore(saved);
        Assert.Equal(0, k.Run);
        Assert.Equal(100, k.Read("pages_to_scan"));
        Assert.Throws<ArgumentException>(() => k.Write("../run", 1));
        Directory.CreateDirectory(Path.Combine(_dir, "sleep_millisecs")); // a write the "kernel" refuses
        Assert.Contains("sleep_millisecs", Assert.Throws<HostMemoryException>(() => k.Write("sleep_millisecs", 5)).Message);
    }
}

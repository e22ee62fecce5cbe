using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Memory.Tests;

/// <summary>GuestMemory.MapFromFile: RAM mapped copy-on-write from a (sparse) file, as snapshot restore uses it.</summary>
public sealed class FileMappingTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"sharpvmm-map-{Guid.NewGuid():N}.bin");

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void Mapped_ram_reads_the_file_and_guest_writes_never_reach_it()
    {
        const int offset = 8192;
        using (var f = File.Create(_path))
        {
            f.SetLength(offset + 0x20_0000); // holes read as zeros
            f.Position = offset + 0x1000;
            f.Write("snapshot page"u8);
            f.Position = offset + 0x1F_F000;
            f.Write("last page"u8);
        }
        using var memory = GuestMemory.Create(0x20_0000);
        memory.Write(0x5000, "payload before restore"u8);
        var observed = new List<(ulong, ulong)>();
        memory.WriteObserver = (gpa, len) => observed.Add((gpa, len));
        using (SafeFileHandle h = File.OpenHandle(_path))
            memory.MapFromFile(memory.Regions[0], h, offset); // the handle may close: the mapping keeps the file

        Assert.Equal("snapshot page"u8.ToArray(), memory.GetReadOnlySpan(0x1000, 13).ToArray());
        Assert.Equal("last page"u8.ToArray(), memory.GetReadOnlySpan(0x1F_F000, 9).ToArray());
        Assert.Equal(new byte[22], memory.GetReadOnlySpan(0x5000, 22).ToArray()); // the old contents are gone
        Assert.Equal([(0UL, 0x20_0000UL)], observed); // decoded-code caches hear of the whole region

        memory.Write(0x1000, "guest wrote"u8);
        Assert.Equal("guest wrote"u8.ToArray(), memory.GetReadOnlySpan(0x1000, 11).ToArray());
        byte[] file = File.ReadAllBytes(_path);
        Assert.Equal("snapshot page"u8.ToArray(), file.AsSpan(offset + 0x1000, 13).ToArray()); // copy-on-write
    }

    [Fact]
    public void A_file_too_short_or_a_misaligned_offset_is_refused_and_ram_stays_usable()
    {
        File.WriteAllBytes(_path, new byte[0x1000]);
        using var memory = GuestMemory.Create(0x10_0000);
        memory.Write(0x2000, "kept"u8);
        using var h = File.OpenHandle(_path);
        Assert.Contains("too short", Assert.Throws<GuestMemoryException>(() => memory.MapFromFile(memory.Regions[0], h, 0)).Message);
        Assert.Contains("multiple of 4096", Assert.Throws<GuestMemoryException>(() => memory.MapFromFile(memory.Regions[0], h, 100)).Message);
        Assert.Equal("kept"u8.ToArray(), memory.GetReadOnlySpan(0x2000, 4).ToArray());
        using var other = GuestMemory.Create(0x10_0000);
        Assert.Throws<ArgumentException>(() => memory.MapFromFile(other.Regions[0], h, 0));
    }
}

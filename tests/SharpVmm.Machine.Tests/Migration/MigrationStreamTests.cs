using System.Buffers.Binary;
using SharpVmm.Machine.Migration;

namespace SharpVmm.Machine.Tests.Migration;

/// <summary>The migration stream format on its own: what is written reads back, and every damage is refused with a clear error.</summary>
public sealed class MigrationStreamTests
{
    private static readonly MigrationHeader Header = new(MigrationProtocol.Version, 2, "emu",
        [(0UL, 0xC000_0000UL), (0x1_0000_0000UL, 0x4000_0000UL)], ["com1", "i8042", "virtio-blk0"]);

    private static byte[] Pages(int count, byte seed)
    {
        var b = new byte[count * MigrationProtocol.PageSize];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)(seed + i * 7);
        return b;
    }

    /// <summary>A complete stream: header, a page run, a zero run, a marker, state, end.</summary>
    private static byte[] Stream(out long pageRecordAt)
    {
        var ms = new MemoryStream();
        using (var w = new MigrationStreamWriter(ms))
        {
            w.WriteHeader(Header);
            w.Flush();
            pageRecordAt = ms.Length;
            w.WritePages(0x5000, Pages(3, 1));
            w.WriteZeroPages(0x1_0000_0000, 1000);
            w.WriteIterationEnd(1);
            w.WritePages(0x9000, Pages(1, 9));
            w.WriteState([1, 2, 3, 4, 5]);
            w.WriteEnd();
        }
        return ms.ToArray();
    }

    [Fact]
    public void Crc32C_matches_the_standard_check_value()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(0u, Crc32C.Compute([]));
        // Appending in pieces gives the same as one go, at every split (the SSE4.2 path works in 8-byte steps).
        var data = Pages(1, 3).AsSpan(0, 100);
        for (int split = 0; split <= data.Length; split++)
            Assert.Equal(Crc32C.Compute(data), Crc32C.Append(Crc32C.Compute(data[..split]), data[split..]));
    }

    [Fact]
    public void Crc32C_values_of_snapshot_pages_and_stream_records_do_not_change()
    {
        // Snapshot files and migration streams written by earlier builds carry these checksums: the values were
        // computed bit by bit from the polynomial, independently of the implementation under test.
        var page = new byte[4096];
        for (int i = 0; i < page.Length; i++) page[i] = (byte)((i * 131) ^ ((i >> 8) * 7));
        Assert.Equal(0x40CCB5C5u, Crc32C.Compute(page));
        Assert.Equal(0x31925D19u, Crc32C.Compute(page.AsSpan(0, 4093)));
        Assert.Equal(0xFB8E29F5u, Crc32C.Compute(page.AsSpan(1)));
        Assert.Equal(0x40CCB5C5u, Crc32C.Append(Crc32C.Compute(page.AsSpan(0, 13)), page.AsSpan(13)));
    }

    [Fact]
    public void A_stream_reads_back_exactly_as_written()
    {
        var bytes = Stream(out _);
        var r = new MigrationStreamReader(new MemoryStream(bytes));
        var h = r.ReadHeader();
        Assert.Equal(Header.Version, h.Version);
        Assert.Equal(2, h.VcpuCount);
        Assert.Equal("emu", h.Accelerator);
        Assert.Equal(Header.Regions, h.Regions);
        Assert.Equal(Header.DeviceIds, h.DeviceIds);
        h.CheckCompatibleWith(Header);

        Assert.Equal(MigrationRecordKind.Pages, r.Read());
        Assert.Equal(0x5000UL, r.Gpa);
        Assert.Equal(3, r.PageCount);
        Assert.True(r.Payload.SequenceEqual(Pages(3, 1)));
        Assert.Equal(MigrationRecordKind.ZeroPages, r.Read());
        Assert.Equal(0x1_0000_0000UL, r.Gpa);
        Assert.Equal(1000, r.PageCount);
        Assert.Equal(0, r.Payload.Length);
        Assert.Equal(MigrationRecordKind.IterationEnd, r.Read());
        Assert.Equal(1, r.Round);
        Assert.Equal(MigrationRecordKind.Pages, r.Read());
        Assert.Equal(0x9000UL, r.Gpa);
        Assert.True(r.Payload.SequenceEqual(Pages(1, 9)));
        Assert.Equal(MigrationRecordKind.State, r.Read());
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, r.Payload.ToArray());
        Assert.Equal(MigrationRecordKind.End, r.Read());
        Assert.Equal(bytes.Length, r.Offset);
        // A zero run costs 17 bytes however long it is; page data goes raw.
        Assert.True(bytes.Length < 4 * MigrationProtocol.PageSize + 200, $"{bytes.Length} bytes");
    }

    [Fact]
    public void A_stream_cut_anywhere_is_refused_as_truncated()
    {
        var bytes = Stream(out _);
        for (int cut = 0; cut < bytes.Length; cut += cut < 200 ? 1 : 509)
        {
            var ex = Assert.Throws<MigrationException>(() => ReadAll(bytes[..cut]));
            Assert.Contains("truncated", ex.Message);
        }
        ReadAll(bytes); // and the whole one is fine
    }

    [Fact]
    public void Any_flipped_byte_in_a_record_is_caught()
    {
        var bytes = Stream(out long at);
        // Every byte of the first page record (header, data, checksum) and a sample of the rest.
        for (long i = at; i < bytes.Length; i += i < at + 16 || i > bytes.Length - 64 ? 1 : 97)
        {
            var bad = (byte[])bytes.Clone();
            bad[i] ^= 0x10;
            var ex = Assert.Throws<MigrationException>(() => ReadAll(bad));
            Assert.True(ex.Message.Contains("corrupt") || ex.Message.Contains("truncated"), $"byte {i}: {ex.Message}");
        }
    }

    [Fact]
    public void A_damaged_header_an_unknown_record_and_a_wrong_record_count_are_refused()
    {
        var bytes = Stream(out long at);
        var badMagic = (byte[])bytes.Clone();
        badMagic[0] = (byte)'X';
        Assert.Contains("not send a SharpVmm migration stream", Assert.Throws<MigrationException>(() => ReadAll(badMagic)).Message);

        var badHeader = (byte[])bytes.Clone();
        badHeader[20] ^= 1; // inside the accelerator name / region table
        Assert.Contains("checksum mismatch in the stream header", Assert.Throws<MigrationException>(() => ReadAll(badHeader)).Message);

        var unknown = (byte[])bytes.Clone();
        unknown[at] = (byte)'Q';
        Assert.Contains("unknown record type 0x51", Assert.Throws<MigrationException>(() => ReadAll(unknown)).Message);

        // An end marker that counts a record that never came (a lost record is corruption, not a short stream).
        var ms = new MemoryStream();
        using (var w = new MigrationStreamWriter(ms))
        {
            w.WriteHeader(Header);
            w.WriteIterationEnd(1);
            w.WriteEnd();
        }
        var lost = ms.ToArray();
        int marker = lost.Length - 13 - 9; // the iteration marker: tag, round, crc
        var dropped = lost[..marker].Concat(lost[(marker + 9)..]).ToArray();
        Assert.Contains("counts 1 records but 0 arrived", Assert.Throws<MigrationException>(() => ReadAll(dropped)).Message);
    }

    [Fact]
    public void A_page_run_that_is_unaligned_or_too_long_is_refused_even_with_a_good_checksum()
    {
        foreach (var (gpa, pages) in new[] { (0x5001UL, 1u), (0x5000UL, 0u), (0x5000UL, (uint)MigrationProtocol.MaxRunPages + 1) })
        {
            var ms = new MemoryStream();
            using (var w = new MigrationStreamWriter(ms)) w.WriteHeader(Header);
            var rec = new byte[13];
            rec[0] = MigrationProtocol.TagPages;
            BinaryPrimitives.WriteUInt64LittleEndian(rec.AsSpan(1), gpa);
            BinaryPrimitives.WriteUInt32LittleEndian(rec.AsSpan(9), pages);
            ms.Write(rec);
            var ex = Assert.Throws<MigrationException>(() => ReadAll(ms.ToArray()));
            Assert.Contains("corrupt", ex.Message);
        }
    }

    [Fact]
    public void A_stream_of_another_version_is_refused_naming_both_versions()
    {
        var bytes = Stream(out _);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 7);
        var ex = Assert.Throws<MigrationException>(() => ReadAll(bytes));
        Assert.Contains("version 7", ex.Message);
        Assert.Contains($"version {MigrationProtocol.Version}", ex.Message);
    }

    [Fact]
    public void Headers_of_different_VMs_are_refused_with_the_option_to_fix()
    {
        Assert.Contains("--cpus", Assert.Throws<MigrationException>(() => Header.CheckCompatibleWith(Header with { VcpuCount = 1 })).Message);
        Assert.Contains("--memory", Assert.Throws<MigrationException>(() => Header.CheckCompatibleWith(Header with { Regions = [(0UL, 0x1000_0000UL)] })).Message);
        Assert.Contains("--accel emu", Assert.Throws<MigrationException>(() => Header.CheckCompatibleWith(Header with { Accelerator = "kvm" })).Message);
        Assert.Contains("--disk", Assert.Throws<MigrationException>(() => Header.CheckCompatibleWith(Header with { DeviceIds = ["com1", "i8042"] })).Message);
    }

    [Fact]
    public void The_ack_reads_back_and_a_damaged_one_is_refused()
    {
        var ms = new MemoryStream();
        new MigrationAck(false, "the source VM has 2 vCPU(s)").WriteTo(ms);
        var ack = MigrationAck.ReadFrom(new MemoryStream(ms.ToArray()));
        Assert.False(ack.Accepted);
        Assert.Equal("the source VM has 2 vCPU(s)", ack.Message);
        var bad = ms.ToArray();
        bad[12] ^= 1;
        Assert.Contains("checksum", Assert.Throws<MigrationException>(() => MigrationAck.ReadFrom(new MemoryStream(bad))).Message);
        Assert.Contains("without acknowledging", Assert.Throws<MigrationException>(() => MigrationAck.ReadFrom(new MemoryStream(bad[..5]))).Message);
    }

    [Fact]
    public void Uris_parse_as_qemu_writes_them()
    {
        Assert.Equal(new MigrationUri("127.0.0.1", 4444), MigrationUri.Parse("tcp:127.0.0.1:4444", listening: false));
        Assert.Equal(new MigrationUri("::1", 4444), MigrationUri.Parse("tcp:[::1]:4444", listening: false));
        Assert.Equal("tcp:[::1]:4444", MigrationUri.Parse("tcp:[::1]:4444", listening: false).ToString());
        Assert.Equal(new MigrationUri("0.0.0.0", 0), MigrationUri.Parse("tcp::0", listening: true));
        Assert.Contains("tcp:HOST:PORT", Assert.Throws<MigrationException>(() => MigrationUri.Parse("unix:/tmp/x", false)).Message);
        Assert.Contains("not a TCP port", Assert.Throws<MigrationException>(() => MigrationUri.Parse("tcp:127.0.0.1:0", false)).Message);
        Assert.Contains("not a TCP port", Assert.Throws<MigrationException>(() => MigrationUri.Parse("tcp:127.0.0.1:99999", true)).Message);
    }

    private static void ReadAll(byte[] bytes)
    {
        var r = new MigrationStreamReader(new MemoryStream(bytes));
        r.ReadHeader();
        while (r.Read() != MigrationRecordKind.End) { }
    }
}

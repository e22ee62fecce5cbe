using SharpVmm.Core.State;
using SharpVmm.Fuzz.Targets;
using SharpVmm.Machine.Migration;
using SharpVmm.Machine.State;

namespace SharpVmm.Fuzz.Tests;

/// <summary>
/// The harness's checksum fix-up: a mutated input that the product refuses at its checksum reaches the parser once
/// the fix-up has run, and the product still refuses the same input without it.
/// </summary>
public sealed class ChecksumFixupTests
{
    private static byte[] Seed(string target, string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Corpus", target, name));

    private static int Find(byte[] data, ReadOnlySpan<byte> what) => data.AsSpan().IndexOf(what);

    [Fact]
    public void A_changed_page_in_a_migration_stream_passes_its_crc_only_after_the_fixup()
    {
        var data = Seed("migration", "small-vm");
        // The one page record: tag 'P', gpa 0x100000, one page; change a byte of its data.
        int page = Find(data, [(byte)'P', 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]);
        Assert.True(page > 0);
        data[page + 13 + 100] ^= 0x5a;
        var expected = data[page + 13 + 100];

        var broken = (byte[])data.Clone();
        var ex = Assert.Throws<MigrationException>(() => ReadAll(broken));
        Assert.Contains("checksum mismatch", ex.Message, StringComparison.Ordinal);

        ChecksumFixup.MigrationStream(data);
        var (pageByte, records) = ReadAll(data);
        Assert.Equal(expected, pageByte);
        Assert.Equal(4, records); // pages, zero pages, iteration end, state
    }

    private static (byte PageByte, int Records) ReadAll(byte[] data)
    {
        var reader = new MigrationStreamReader(new MemoryStream(data), bufferSize: 4096);
        reader.ReadHeader();
        byte pageByte = 0;
        int records = 0;
        while (true)
        {
            var kind = reader.Read();
            if (kind == MigrationRecordKind.End) return (pageByte, records);
            records++;
            if (kind == MigrationRecordKind.Pages) pageByte = reader.Payload[100];
            if (kind == MigrationRecordKind.State) MachineStateFormat.Read(new MemoryStream(reader.Payload.ToArray()));
        }
    }

    [Fact]
    public void A_changed_snapshot_header_and_machine_state_pass_their_hashes_only_after_the_fixup()
    {
        var data = Seed("snapshot", "small-vm");
        // The tag "seed" in the header payload becomes "seeD"; a byte of the machine state's body changes too.
        int tag = Find(data.AsSpan(0, SnapshotFormat.HeaderSize).ToArray(), "seed"u8);
        Assert.True(tag > 0);
        data[tag + 3] = (byte)'D';
        data[SnapshotFormat.HeaderSize + 20 + 3] ^= 0x01;

        var broken = (byte[])data.Clone();
        Assert.Contains("checksum", Assert.Throws<StateFormatException>(() => SnapshotFormat.Decode(broken.AsSpan(0, SnapshotFormat.HeaderSize), 1L << 40, "x")).Message, StringComparison.Ordinal);
        Assert.Contains("checksum", Assert.Throws<StateFormatException>(() => MachineStateFormat.Read(new MemoryStream(broken, SnapshotFormat.HeaderSize, broken.Length - SnapshotFormat.HeaderSize))).Message, StringComparison.Ordinal);

        ChecksumFixup.SnapshotHeader(data.AsSpan(0, SnapshotFormat.HeaderSize));
        ChecksumFixup.MachineState(data.AsSpan(SnapshotFormat.HeaderSize));
        Assert.Equal("seeD", SnapshotFormat.Decode(data.AsSpan(0, SnapshotFormat.HeaderSize), 1L << 40, "x").Tag);
        try { MachineStateFormat.Read(new MemoryStream(data, SnapshotFormat.HeaderSize, data.Length - SnapshotFormat.HeaderSize)); }
        catch (StateFormatException e) { Assert.DoesNotContain("checksum", e.Message, StringComparison.Ordinal); }
    }
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using SharpVmm.Machine.Migration;
using SharpVmm.Machine.State;
using static SharpVmm.Machine.Migration.MigrationProtocol;

namespace SharpVmm.Fuzz.Targets;

/// <summary>
/// Rewrites the checksums of a mutated input so that they match its mutated contents again, before the target hands it
/// to the product's parser. Without this a fuzzer stops at the first checksum (a SHA-256 or CRC-32C it cannot
/// guess) and never reaches the parser behind it. Only the harness does this: the product keeps verifying every
/// checksum, and its refusal of a wrong one is tested by the unit tests. Each walk mirrors the reader's layout
/// leniently and stops where the input no longer fits it, leaving the rest as the fuzzer made it.
/// </summary>
public static class ChecksumFixup
{
    private const int ShaBytes = 32;

    /// <summary>A snapshot header page: "SVMSNAP1", u32 version, i32 payload length, payload, SHA-256(payload).</summary>
    public static void SnapshotHeader(Span<byte> page)
    {
        if (page.Length < SnapshotFormat.HeaderSize) return;
        int n = BinaryPrimitives.ReadInt32LittleEndian(page[12..]);
        if (n < 0 || n > SnapshotFormat.HeaderSize - 16 - ShaBytes) return;
        SHA256.HashData(page.Slice(16, n), page.Slice(16 + n, ShaBytes));
    }

    /// <summary>A machine-state record: "SVMSTATE", u32 version, i64 body length, body, SHA-256(body).</summary>
    public static void MachineState(Span<byte> record)
    {
        if (record.Length < 20) return;
        long n = BinaryPrimitives.ReadInt64LittleEndian(record[12..]);
        if (n < 0 || n > record.Length - 20 - ShaBytes) return;
        SHA256.HashData(record.Slice(20, (int)n), record.Slice(20 + (int)n, ShaBytes));
    }

    /// <summary>A migration stream: the header and every record end in a CRC-32C of what precedes them in it.</summary>
    public static void MigrationStream(Span<byte> s)
    {
        int at = MigrationHeaderEnd(s);
        if (at < 0 || at + 4 > s.Length) return;
        BinaryPrimitives.WriteUInt32LittleEndian(s[at..], Crc32C.Compute(s[..at]));
        at += 4;
        while (at < s.Length)
        {
            int start = at;
            int body = s[at] switch
            {
                TagPages when at + 13 <= s.Length => 12 + PageSize * (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(s[(at + 9)..]), (uint)MaxRunPages + 1),
                TagZeroPages => 12,
                TagIterationEnd => 4,
                TagState when at + 5 <= s.Length => 4 + (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(s[(at + 1)..]), (uint)s.Length),
                TagEnd => 8,
                _ => -1,
            };
            if (body < 0 || (long)at + 1 + body + 4 > s.Length) return;
            at += 1 + body;
            // The state record carries a machine-state record with its own SHA-256, inside the part the CRC covers.
            if (s[start] == TagState) MachineState(s[(start + 5)..at]);
            BinaryPrimitives.WriteUInt32LittleEndian(s[at..], Crc32C.Compute(s[start..at]));
            at += 4;
        }
    }

    /// <summary>Where the header's CRC goes: magic, version, vCPUs, accelerator, regions, device ids; -1 if the input ends first.</summary>
    private static int MigrationHeaderEnd(ReadOnlySpan<byte> s)
    {
        int at = 8 + 4 + 4;
        if (!SkipString(s, ref at) || at + 4 > s.Length) return -1;
        uint regions = BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
        at += 4;
        if (regions > MaxRegions || (long)at + regions * 16L > s.Length) return -1;
        at += (int)regions * 16;
        if (at + 4 > s.Length) return -1;
        uint devices = BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
        at += 4;
        if (devices > MaxDevices) return -1;
        for (int i = 0; i < devices; i++)
            if (!SkipString(s, ref at)) return -1;
        return at;
    }

    private static bool SkipString(ReadOnlySpan<byte> s, ref int at)
    {
        if (at + 2 > s.Length) return false;
        int len = BinaryPrimitives.ReadUInt16LittleEndian(s[at..]);
        if (at + 2 + len > s.Length) return false;
        at += 2 + len;
        return true;
    }
}

using System.Buffers.Binary;

namespace SharpVmm.Block.Qcow2;

public enum CheckRepair { None, Leaks, All }

/// <summary>What qemu-img check reports, with the same meanings.</summary>
public sealed class CheckResult
{
    public long Corruptions { get; set; }
    public long Leaks { get; set; }
    public long CheckErrors { get; set; }
    public long CorruptionsFixed { get; set; }
    public long LeaksFixed { get; set; }
    public long AllocatedClusters { get; set; }
    public long TotalClusters { get; set; }
    public long FragmentedClusters { get; set; }
    public long CompressedClusters { get; set; }
    public long ImageEndOffset { get; set; }
    public List<string> Messages { get; } = [];
}

/// <summary>
/// Recomputes every cluster's refcount from the tables that reference it and compares with the stored refcounts,
/// as qemu-img check does; optionally repairs leaks (refcount too high) or everything.
/// </summary>
internal static class Qcow2Checker
{
    private const int MaxMessages = 200;

    public static CheckResult Check(Qcow2Image img, CheckRepair repair)
    {
        var r = Scan(img, repair == CheckRepair.All);
        if (repair == CheckRepair.None || (r.Result.Leaks == 0 && r.Result.Corruptions == 0)) return r.Result;
        if (img.IsReadOnly) throw new BlockImageException($"'{img.Path}' is open read-only and cannot be repaired");
        Repair(img, r, repair);
        var after = Scan(img, false).Result;
        after.LeaksFixed = Math.Max(0, r.Result.Leaks - after.Leaks);
        after.CorruptionsFixed = Math.Max(0, r.Result.Corruptions - after.Corruptions);
        after.Messages.InsertRange(0, r.Result.Messages);
        if (after.Corruptions == 0)
        {
            if (img.IsCorrupt)
            {
                img.Header.Incompatible &= ~Qcow2Header.IncompatCorrupt;
                img.WriteHeaderField(72, img.Header.Incompatible);
                img.Sync();
            }
            img.ClearDirty();
        }
        return after;
    }

    private sealed class ScanState
    {
        public readonly CheckResult Result = new();
        public uint[] Expected = [];
        public ulong[] Stored = [];
        public long FileClusters;
        public readonly List<long> BadL1 = [];
        public readonly List<(long L2, int Index)> BadL2 = [];
        public readonly List<long> BadRefBlocks = [];
    }

    private static ScanState Scan(Qcow2Image img, bool collectFixes)
    {
        var s = new ScanState();
        var r = s.Result;
        var h = img.Header;
        var cs = img.ClusterSize;
        var cb = img.ClusterBits;
        var fileLen = RandomAccess.GetLength(img.Handle);
        s.FileClusters = (fileLen + cs - 1) >> cb;
        s.Expected = new uint[s.FileClusters];
        r.TotalClusters = (img.Size + cs - 1) >> cb;
        void Msg(string m) { if (r.Messages.Count < MaxMessages) r.Messages.Add(m); }

        bool Inc(long off, long len, string what)
        {
            if (len <= 0) return true;
            var first = off >> cb;
            var last = (off + len - 1) >> cb;
            if (off < 0 || last >= s.FileClusters)
            {
                Msg($"ERROR {what} at 0x{off:x} is past the end of the image file");
                r.Corruptions++;
                return false;
            }
            for (var c = first; c <= last; c++) s.Expected[c]++;
            return true;
        }

        Inc(0, cs, "header");
        Inc(h.RefcountTableOffset, (long)h.RefcountTableClusters * cs, "refcount table");
        if (h.SnapshotCount > 0) Inc(h.SnapshotsOffset, Qcow2Snapshot.TableBytes(img.Snapshots), "snapshot table");
        if (img.L1.Length > 0) Inc(h.L1TableOffset, img.L1.Length * 8L, "L1 table");
        var l2 = new byte[cs];
        void Walk(ulong[] l1, bool active)
        {
            long prevData = -1;
            for (var i = 0; i < l1.Length; i++)
            {
                var off = (long)(l1[i] & Qcow2Image.OffsetMask);
                if (off == 0) continue;
                if ((off & (cs - 1)) != 0 || off < cs || off + cs > fileLen)
                {
                    Msg($"ERROR L2 table offset 0x{off:x} (L1 index {i}) is invalid");
                    r.Corruptions++;
                    if (active && collectFixes) s.BadL1.Add(i);
                    continue;
                }
                Inc(off, cs, "L2 table");
                ImageFile.ReadFully(img.Handle, off, l2);
                var n = cs / (img.ExtendedL2 ? 16 : 8);
                for (var j = 0; j < n; j++)
                {
                    var e = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(img.ExtendedL2 ? j * 16 : j * 8));
                    if ((e & Qcow2Image.CompressedFlag) != 0)
                    {
                        var (co, cl) = img.CompressedExtent(e);
                        if (co < cs || !Inc(co, Math.Min(cl, Math.Max(1, fileLen - co)), "compressed cluster"))
                        {
                            if (co < cs) { Msg($"ERROR compressed cluster at 0x{co:x} points into the header"); r.Corruptions++; }
                            if (active && collectFixes) s.BadL2.Add((off, j));
                            continue;
                        }
                        if (active) { r.AllocatedClusters++; r.CompressedClusters++; }
                        continue;
                    }
                    var d = (long)(e & Qcow2Image.OffsetMask);
                    if (d == 0) continue;
                    if ((d & (cs - 1)) != 0 || d < cs)
                    {
                        Msg($"ERROR data cluster offset 0x{d:x} (L2 0x{off:x} index {j}) is invalid");
                        r.Corruptions++;
                        if (active && collectFixes) s.BadL2.Add((off, j));
                        continue;
                    }
                    if (!Inc(d, cs, "data cluster"))
                    {
                        if (active && collectFixes) s.BadL2.Add((off, j));
                        continue;
                    }
                    if (active)
                    {
                        r.AllocatedClusters++;
                        if (prevData >= 0 && d != prevData + cs) r.FragmentedClusters++;
                        prevData = d;
                    }
                }
            }
        }
        Walk(img.L1, true);
        foreach (var snap in img.Snapshots)
        {
            if (snap.L1Size == 0) continue;
            if (!Inc(snap.L1TableOffset, snap.L1Size * 8L, $"L1 table of snapshot '{snap.Name}'")) continue;
            Walk(img.ReadL1(snap.L1TableOffset, snap.L1Size), false);
        }

        // Stored refcounts, read straight from disk (the caller flushed), tolerating broken pointers.
        var rt = img.RefcountTable;
        var rbBits = img.RefcountBlockBits;
        var covered = (long)rt.Length << rbBits;
        s.Stored = new ulong[Math.Min(covered, s.FileClusters + 65536)];
        var block = new byte[cs];
        var bits = img.RefcountBits;
        for (var i = 0; i < rt.Length; i++)
        {
            var off = (long)(rt[i] & Qcow2Image.OffsetMask);
            if (off == 0) continue;
            if ((off & (cs - 1)) != 0 || off < cs || off + cs > fileLen)
            {
                Msg($"ERROR refcount block {i} offset 0x{off:x} is invalid");
                r.Corruptions++;
                if (collectFixes) s.BadRefBlocks.Add(i);
                continue;
            }
            Inc(off, cs, "refcount block");
            ImageFile.ReadFully(img.Handle, off, block);
            var basec = (long)i << rbBits;
            var per = 1 << rbBits;
            for (var j = 0; j < per; j++)
            {
                var c = basec + j;
                if (c >= s.Stored.Length) break;
                s.Stored[c] = ReadRef(block, j, bits);
            }
        }
        long highest = -1;
        var n2 = Math.Max(s.Stored.Length, s.Expected.Length);
        for (long c = 0; c < n2; c++)
        {
            var st = c < s.Stored.Length ? s.Stored[c] : 0;
            var ex = c < s.Expected.Length ? s.Expected[c] : 0u;
            if (st != 0 || ex != 0) highest = c;
            if (st == ex) continue;
            if (st > ex)
            {
                Msg($"Leaked cluster {c} refcount={st} reference={ex}");
                r.Leaks++;
            }
            else
            {
                Msg($"ERROR cluster {c} refcount={st} reference={ex}");
                r.Corruptions++;
            }
        }
        r.ImageEndOffset = (highest + 1) * cs;

        // COPIED must be set exactly where the refcount is 1 (active tables only).
        ulong Stored(long c) => c < s.Stored.Length ? s.Stored[c] : 0;
        for (var i = 0; i < img.L1.Length; i++)
        {
            var off = (long)(img.L1[i] & Qcow2Image.OffsetMask);
            if (off == 0 || (off & (cs - 1)) != 0 || off < cs || off + cs > fileLen) continue;
            var rc = Stored(off >> cb);
            if ((rc == 1) != ((img.L1[i] & Qcow2Image.Copied) != 0))
            {
                Msg($"ERROR OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={img.L1[i]:x} refcount={rc}");
                r.Corruptions++;
            }
            ImageFile.ReadFully(img.Handle, off, l2);
            var n = cs / (img.ExtendedL2 ? 16 : 8);
            for (var j = 0; j < n; j++)
            {
                var e = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(img.ExtendedL2 ? j * 16 : j * 8));
                if ((e & Qcow2Image.CompressedFlag) != 0) continue;
                var d = (long)(e & Qcow2Image.OffsetMask);
                if (d == 0 || (d & (cs - 1)) != 0 || d < cs) continue;
                var drc = Stored(d >> cb);
                if ((drc == 1) != ((e & Qcow2Image.Copied) != 0))
                {
                    Msg($"ERROR OFLAG_COPIED data cluster: l2_entry={e:x} refcount={drc}");
                    r.Corruptions++;
                }
            }
        }
        return s;
    }

    private static ulong ReadRef(byte[] b, int i, int bits) => bits switch
    {
        8 => b[i],
        16 => BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(i * 2)),
        32 => BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(i * 4)),
        64 => BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(i * 8)),
        _ => (ulong)((b[i * bits >> 3] >> (i * bits & 7)) & ((1 << bits) - 1)),
    };

    private static void Repair(Qcow2Image img, ScanState s, CheckRepair repair)
    {
        img.FlushMetadata(sync: true);
        var cs = img.ClusterSize;
        if (repair == CheckRepair.All)
        {
            // Broken pointers are dropped: the data behind them is unreachable anyway.
            foreach (var i in s.BadRefBlocks) img.RefcountTable[i] = 0;
            if (s.BadRefBlocks.Count > 0) WriteRefcountTable(img);
            foreach (var i in s.BadL1) { img.L1[i] = 0; img.WriteL1Entry(i); }
            var z = new byte[8];
            foreach (var (l2, j) in s.BadL2)
            {
                RandomAccess.Write(img.Handle, z, l2 + (long)j * (img.ExtendedL2 ? 16 : 8));
            }
            img.DropCaches();
        }
        var expected = s.Expected;
        img.ReservedClusters = c => c < expected.Length && expected[c] > 0;
        try
        {
            var n = Math.Max(s.Stored.Length, expected.Length);
            for (long c = 0; c < n; c++)
            {
                var st = c < s.Stored.Length ? s.Stored[c] : 0;
                var ex = c < expected.Length ? expected[c] : 0u;
                if (st == ex) continue;
                if (st > ex || repair == CheckRepair.All)
                {
                    if (st > ex && c >= expected.Length && (c >> img.RefcountBlockBits) >= img.RefcountTable.Length) continue;
                    img.SetRefcount(c, ex);
                }
            }
            img.FlushMetadata(sync: true);
            if (repair == CheckRepair.All)
            {
                img.FixCopiedFlags();
                img.FlushMetadata(sync: true);
            }
        }
        finally { img.ReservedClusters = null; }
        _ = cs;
    }

    private static void WriteRefcountTable(Qcow2Image img)
    {
        var rt = img.RefcountTable;
        var buf = new byte[rt.Length * 8];
        for (var i = 0; i < rt.Length; i++) BinaryPrimitives.WriteUInt64BigEndian(buf.AsSpan(i * 8), rt[i]);
        RandomAccess.Write(img.Handle, buf, img.Header.RefcountTableOffset);
        img.Sync();
    }
}

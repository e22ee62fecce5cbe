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
/// as qemu-img check does; optionally repairs leaks (refcount too high) or everything. Refcount structures broken
/// beyond fixing single refcounts (a refcount block outside the file, misaligned, with reserved bits, or sharing its
/// cluster with other metadata or data) are rebuilt from scratch with -r all, as qemu-img does
/// (<see cref="Qcow2RefcountRebuild"/>).
/// </summary>
internal static class Qcow2Checker
{
    private const int MaxMessages = 200;

    public static CheckResult Check(Qcow2Image img, CheckRepair repair)
    {
        var r = Scan(img);
        if (repair == CheckRepair.None || (r.Result.Leaks == 0 && r.Result.Corruptions == 0)) return r.Result;
        if (img.IsReadOnly) throw new BlockImageException($"'{img.Path}' is open read-only and cannot be repaired");
        if (r.Unsafe.Count > 0)
        {
            // Repairing these would change what the guest reads (dropping a broken pointer) or could put guest data
            // and metadata in one cluster: refuse before writing anything, so the file is never left worse.
            r.Result.Messages.Add($"ERROR the image was not repaired (nothing was written): {r.Unsafe[0]}{(r.Unsafe.Count > 1 ? $" (and {r.Unsafe.Count - 1} more)" : "")}; its data may be copied out with 'sharpvmm img convert'");
            return r.Result;
        }
        var fixing = r;
        if (r.Rebuild.Count > 0)
        {
            if (repair != CheckRepair.All)
            {
                // As qemu-img: only -r all may replace the refcount structures.
                r.Result.Messages.Add($"ERROR need to rebuild refcount structures ({r.Rebuild[0]}); nothing was written: use -r all");
                r.Result.CheckErrors++;
                return r.Result;
            }
            r.Result.Messages.Add("Rebuilding refcount structure");
            if (!Qcow2RefcountRebuild.Run(img, r, out var why))
            {
                r.Result.Messages.Add($"ERROR the image was not repaired (the file is as it was): {why}");
                r.Result.CheckErrors++;
                return r.Result;
            }
            fixing = Scan(img);
        }
        if (fixing.Result.Leaks > 0 || fixing.Result.Corruptions > 0)
        {
            if (fixing.Unsafe.Count > 0 || fixing.Rebuild.Count > 0)
                throw new BlockImageException($"'{img.Path}': the rebuilt refcount structure is still broken: {(fixing.Unsafe.Count > 0 ? fixing.Unsafe[0] : fixing.Rebuild[0])}");
            Repair(img, fixing, repair);
        }
        var after = Scan(img).Result;
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

    internal sealed class ScanState
    {
        public readonly CheckResult Result = new();
        public uint[] Expected = [];
        public ulong[] Stored = [];
        public long FileClusters;
        /// <summary>Why a repair could change guest-visible data or mix data with metadata: then nothing is repaired.</summary>
        public readonly List<string> Unsafe = [];
        /// <summary>What each file cluster is used as (<see cref="RoleData"/> and so on), to find clusters used twice over.</summary>
        public byte[] Roles = [];
        /// <summary>Why the refcount structures must be rebuilt rather than fixed refcount by refcount.</summary>
        public readonly List<string> Rebuild = [];
        /// <summary>Clusters counted as refcount blocks (valid offsets inside the file), for the rebuild to discount.</summary>
        public readonly List<long> RefBlockClusters = [];
        /// <summary>Stored refcounts that differ from the references (leaks and refcount corruptions).</summary>
        public long RefcountMismatches;
    }

    /// <summary>A refcount table not (yet) named by the header: the rebuild checks its new structures through this.</summary>
    internal sealed record RefcountTableView(long Offset, int Clusters, ulong[] Entries);

    private const byte RoleData = 1, RoleL2 = 2, RoleRefBlock = 4, RoleFixed = 8;

    // The bits the spec reserves (must be zero) in each kind of table entry, as qemu-img check tests them.
    private const ulong L1Reserved = 0x7f00_0000_0000_01ffUL;
    private const ulong L2Reserved = 0x3f00_0000_0000_01feUL;
    private const ulong RefTableReserved = 0x1ffUL;

    internal static ScanState Scan(Qcow2Image img, RefcountTableView? refcounts = null)
    {
        var s = new ScanState();
        var r = s.Result;
        var h = img.Header;
        var cs = img.ClusterSize;
        var cb = img.ClusterBits;
        var fileLen = RandomAccess.GetLength(img.Handle);
        s.FileClusters = (fileLen + cs - 1) >> cb;
        s.Expected = new uint[s.FileClusters];
        s.Roles = new byte[s.FileClusters];
        r.TotalClusters = (img.Size + cs - 1) >> cb;
        void Msg(string m) { if (r.Messages.Count < MaxMessages) r.Messages.Add(m); }

        void Unsafe(string why) { if (s.Unsafe.Count < MaxMessages) s.Unsafe.Add(why); }

        bool Inc(long off, long len, string what, byte role)
        {
            if (len <= 0) return true;
            var first = off >> cb;
            var last = (off + len - 1) >> cb;
            if (off < 0 || last >= s.FileClusters)
            {
                Msg($"ERROR {what} at 0x{off:x} is past the end of the image file");
                r.Corruptions++;
                Unsafe($"a {what} at 0x{off:x} lies past the end of the file");
                return false;
            }
            for (var c = first; c <= last; c++)
            {
                s.Expected[c]++;
                s.Roles[c] |= role;
            }
            return true;
        }

        Inc(0, cs, "header", RoleFixed);
        Inc(refcounts?.Offset ?? h.RefcountTableOffset, (long)(refcounts?.Clusters ?? h.RefcountTableClusters) * cs, "refcount table", RoleFixed);
        if (h.SnapshotCount > 0) Inc(h.SnapshotsOffset, Qcow2Snapshot.TableBytes(img.Snapshots), "snapshot table", RoleFixed);
        if (img.L1.Length > 0) Inc(h.L1TableOffset, img.L1.Length * 8L, "L1 table", RoleFixed);
        var l2 = new byte[cs];
        void Walk(ulong[] l1, bool active)
        {
            long prevData = -1;
            for (var i = 0; i < l1.Length; i++)
            {
                if ((l1[i] & L1Reserved) != 0)
                {
                    Msg($"ERROR found L1 entry with reserved bits set: {l1[i]:x}");
                    r.Corruptions++;
                    Unsafe($"L1 entry {i} has reserved bits set");
                }
                var off = (long)(l1[i] & Qcow2Image.OffsetMask);
                if (off == 0) continue;
                if ((off & (cs - 1)) != 0 || off < cs || off + cs > fileLen)
                {
                    Msg($"ERROR L2 table offset 0x{off:x} (L1 index {i}) is invalid");
                    r.Corruptions++;
                    Unsafe($"L1 entry {i} points at an invalid L2 table offset 0x{off:x}");
                    continue;
                }
                Inc(off, cs, "L2 table", RoleL2);
                ImageFile.ReadFully(img.Handle, off, l2);
                var n = cs / (img.ExtendedL2 ? 16 : 8);
                for (var j = 0; j < n; j++)
                {
                    var e = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(img.ExtendedL2 ? j * 16 : j * 8));
                    if ((e & Qcow2Image.CompressedFlag) != 0)
                    {
                        if ((e & Qcow2Image.Copied) != 0)
                        {
                            // Repaired by clearing the flag (FixCopiedFlags), which changes no data.
                            Msg($"ERROR: coffset=0x{img.CompressedExtent(e).Offset:x}: copied flag must never be set for compressed clusters");
                            r.Corruptions++;
                        }
                        var (co, cl) = img.CompressedExtent(e);
                        // Every cluster the compressed bytes touch is counted, as qemu-img does: one overrunning the
                        // file (or its counted clusters) shows as a corruption instead of being cut short.
                        if (co < cs || !Inc(co, cl, "compressed cluster", RoleData))
                        {
                            if (co < cs)
                            {
                                Msg($"ERROR compressed cluster at 0x{co:x} points into the header");
                                r.Corruptions++;
                                Unsafe($"a compressed cluster descriptor points into the header (0x{co:x})");
                            }
                            continue;
                        }
                        if (active) { r.AllocatedClusters++; r.CompressedClusters++; }
                        continue;
                    }
                    if ((e & L2Reserved) != 0)
                    {
                        Msg($"ERROR found l2 entry with reserved bits set: {e:x}");
                        r.Corruptions++;
                        Unsafe($"the L2 entry {j} of the table at 0x{off:x} has reserved bits set");
                    }
                    var d = (long)(e & Qcow2Image.OffsetMask);
                    if (d == 0) continue;
                    if ((d & (cs - 1)) != 0 || d < cs)
                    {
                        Msg($"ERROR data cluster offset 0x{d:x} (L2 0x{off:x} index {j}) is invalid");
                        r.Corruptions++;
                        Unsafe($"the L2 entry {j} of the table at 0x{off:x} points at an invalid offset 0x{d:x}");
                        continue;
                    }
                    if (!Inc(d, cs, "data cluster", RoleData)) continue;
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
            if (!Inc(snap.L1TableOffset, snap.L1Size * 8L, $"L1 table of snapshot '{snap.Name}'", RoleFixed)) continue;
            Walk(img.ReadL1(snap.L1TableOffset, snap.L1Size), false);
        }

        // Stored refcounts, read straight from disk (the caller flushed), tolerating broken pointers.
        var rt = refcounts?.Entries ?? img.RefcountTable;
        var rbBits = img.RefcountBlockBits;
        var covered = (long)rt.Length << rbBits;
        s.Stored = new ulong[Math.Min(covered, s.FileClusters + 65536)];
        var block = new byte[cs];
        var bits = img.RefcountBits;
        for (var i = 0; i < rt.Length; i++)
        {
            if ((rt[i] & RefTableReserved) != 0)
            {
                Msg($"ERROR refcount table entry {i} has reserved bits set");
                r.Corruptions++;
                s.Rebuild.Add($"refcount table entry {i} has reserved bits set");
                continue;
            }
            var off = (long)(rt[i] & Qcow2Image.OffsetMask);
            if (off == 0) continue;
            if ((off & (cs - 1)) != 0 || off < cs || off + cs > fileLen)
            {
                Msg(off + cs > fileLen && (off & (cs - 1)) == 0 && off >= cs
                    ? $"ERROR refcount block {i} is outside image"
                    : $"ERROR refcount block {i} offset 0x{off:x} is invalid");
                r.Corruptions++;
                s.Rebuild.Add($"refcount block {i} has an invalid offset 0x{off:x}");
                continue;
            }
            Inc(off, cs, "refcount block", RoleRefBlock);
            s.RefBlockClusters.Add(off >> cb);
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
        // A cluster used as two kinds of thing (data and a table, or two kinds of table), or a refcount block or fixed
        // table referenced twice, cannot be repaired by fixing refcounts: one user's writes destroy the other's.
        for (long c = 0; c < s.Roles.Length; c++)
        {
            var role = s.Roles[c];
            if (role == 0) continue;
            var mixed = (role & (role - 1)) != 0;
            if (!mixed && (role & (RoleRefBlock | RoleFixed)) == 0) continue;
            if (!mixed && s.Expected[c] == 1) continue;
            var others = (byte)(role & ~RoleRefBlock);
            long refBlocks = 0;
            foreach (var b in s.RefBlockClusters) if (b == c) refBlocks++;
            if ((role & RoleRefBlock) != 0)
                Msg($"ERROR refcount block at cluster {c} refcount={s.Expected[c]}{(others != 0 ? $" (it is also used as {RoleName(others, (uint)(s.Expected[c] - refBlocks))})" : "")}");
            else
                Msg($"ERROR cluster {c} is used as {RoleName(role, s.Expected[c])}");
            r.Corruptions++;
            // A refcount block sharing its cluster is fixed by new refcount structures elsewhere, which leave the
            // other user's bytes alone; two other users of one cluster cannot be separated without changing data.
            // (Data or an L2 table counted more than once is normal: snapshots share them.)
            if ((role & RoleRefBlock) != 0 && (others & (others - 1)) == 0 && !(others == RoleFixed && s.Expected[c] - refBlocks > 1))
                s.Rebuild.Add($"cluster {c} (offset 0x{c << cb:x}) is used as {RoleName(role, s.Expected[c])}");
            else
                Unsafe($"cluster {c} (offset 0x{c << cb:x}) is used as {RoleName(role, s.Expected[c])}");
        }

        long highest = -1;
        var n2 = Math.Max(s.Stored.Length, s.Expected.Length);
        for (long c = 0; c < n2; c++)
        {
            var st = c < s.Stored.Length ? s.Stored[c] : 0;
            var ex = c < s.Expected.Length ? s.Expected[c] : 0u;
            if (st != 0 || ex != 0) highest = c;
            if (st == ex) continue;
            s.RefcountMismatches++;
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

    private static string RoleName(byte role, uint refs)
    {
        var names = new List<string>();
        if ((role & RoleData) != 0) names.Add("guest data");
        if ((role & RoleL2) != 0) names.Add("an L2 table");
        if ((role & RoleRefBlock) != 0) names.Add("a refcount block");
        if ((role & RoleFixed) != 0) names.Add("a header, L1, refcount or snapshot table");
        if (names.Count == 0) names.Add("metadata");
        return names.Count == 1 ? $"{names[0]} {refs} times" : string.Join(" and ", names);
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
        // Only refcounts and COPIED flags change here: Check refused every case that would touch a mapping.
        img.FlushMetadata(sync: true);
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
    }
}

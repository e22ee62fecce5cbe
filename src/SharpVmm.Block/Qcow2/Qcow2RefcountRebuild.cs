using System.Buffers.Binary;

namespace SharpVmm.Block.Qcow2;

/// <summary>
/// qemu-img check -r all's "Rebuilding refcount structure": when refcount blocks are outside the file, misaligned,
/// flagged with reserved bits or share their cluster with other metadata or data, fixing refcounts one by one would
/// write through the broken blocks. Instead a complete new refcount table and blocks, computed from the references
/// alone, are written past the end of the file (where nothing lives), checked by a second scan that reads them back,
/// and only then made current by one header write (table offset and size, 12 bytes in one sector). Until that write
/// the header still names the old structures, so an interruption or a failed check leaves the file as it was (it is
/// cut back to its old length). L1, L2 tables and guest data are never written, so the guest reads what it read.
/// </summary>
internal static class Qcow2RefcountRebuild
{
    /// <summary>Rebuilds from the references <paramref name="scan"/> found; false (file unchanged) with the reason if it cannot.</summary>
    public static bool Run(Qcow2Image img, Qcow2Checker.ScanState scan, out string why)
    {
        var h = img.Header;
        var cs = img.ClusterSize;
        var cb = img.ClusterBits;
        var width = new RefcountWidth(h.RefcountOrder);
        var perBlockBits = width.EntriesPerBlockBits(cb);
        long perBlock = 1L << perBlockBits;
        long perTable = cs / 8;

        // References without the old refcount structures, which the new ones replace (their clusters become free).
        var refs = (uint[])scan.Expected.Clone();
        foreach (var c in scan.RefBlockClusters) refs[c]--;
        var oldTable = h.RefcountTableOffset >> cb;
        for (var c = oldTable; c < oldTable + h.RefcountTableClusters && c < refs.Length; c++) refs[c]--;
        for (long c = 0; c < refs.Length; c++)
        {
            if (refs[c] > width.Max)
            {
                why = $"cluster {c} has {refs[c]} references, more than {width.Bits}-bit refcounts hold";
                return false;
            }
        }

        // The new blocks and table follow the last cluster of the file; they describe themselves too.
        var start = scan.FileClusters;
        long blocks = 0, tableClusters = 0;
        while (true)
        {
            var total = start + blocks + tableClusters;
            var b = (total + perBlock - 1) / perBlock;
            var t = Math.Max(1, (b + perTable - 1) / perTable);
            if (b == blocks && t == tableClusters) break;
            blocks = b;
            tableClusters = t;
        }
        if (tableClusters * cs > (8L << 20) + cs)
        {
            why = "the new refcount table would exceed 8 MiB";
            return false;
        }
        var end = start + blocks + tableClusters;
        var tableAt = (start + blocks) << cb;

        var oldLength = RandomAccess.GetLength(img.Handle);
        var table = new ulong[tableClusters * perTable];
        var block = new byte[cs];
        try
        {
            for (long i = 0; i < blocks; i++)
            {
                Array.Clear(block);
                for (long c = i * perBlock; c < Math.Min(end, (i + 1) * perBlock); c++)
                    width.Write(block, (int)(c - i * perBlock), c < refs.Length ? refs[c] : c >= start ? 1u : 0u);
                var at = (start + i) << cb;
                RandomAccess.Write(img.Handle, block, at);
                table[i] = (ulong)at;
            }
            var bytes = new byte[tableClusters * cs];
            for (var i = 0; i < table.Length; i++) BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), table[i]);
            RandomAccess.Write(img.Handle, bytes, tableAt);
            FileSyscalls.DataSync(img.Handle);

            // Read back and recount before the header points at it: not one refcount may differ from its references.
            var check = Qcow2Checker.Scan(img, new Qcow2Checker.RefcountTableView(tableAt, (int)tableClusters, table));
            if (check.Unsafe.Count > 0 || check.Rebuild.Count > 0 || check.RefcountMismatches > 0)
            {
                why = "the new refcount structure did not check out: "
                    + (check.Unsafe.Count > 0 ? check.Unsafe[0] : check.Rebuild.Count > 0 ? check.Rebuild[0] : $"{check.RefcountMismatches} refcounts differ from their references");
                Undo(img, oldLength);
                return false;
            }
        }
        catch (IOException ex)
        {
            why = $"writing the new refcount structure failed: {ex.Message}";
            Undo(img, oldLength);
            return false;
        }

        Span<byte> hdr = stackalloc byte[12];
        BinaryPrimitives.WriteInt64BigEndian(hdr, tableAt);
        BinaryPrimitives.WriteInt32BigEndian(hdr[8..], (int)tableClusters);
        RandomAccess.Write(img.Handle, hdr, 48);
        FileSyscalls.DataSync(img.Handle);
        h.RefcountTableOffset = tableAt;
        h.RefcountTableClusters = (int)tableClusters;
        img.DropCaches();
        img.ReloadRefcountTable();
        img.EndCluster = Math.Max(img.EndCluster, end);
        why = "";
        return true;
    }

    private static void Undo(Qcow2Image img, long oldLength)
    {
        try
        {
            RandomAccess.SetLength(img.Handle, oldLength);
            FileSyscalls.DataSync(img.Handle);
        }
        catch (IOException) { }
    }
}

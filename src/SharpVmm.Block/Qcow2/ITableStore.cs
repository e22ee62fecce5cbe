namespace SharpVmm.Block.Qcow2;

/// <summary>Where the tables of a <see cref="TableCache"/> live in the image: how a pointer to one is checked, and how one is read and written.</summary>
internal interface ITableStore
{
    /// <summary>Refuses a pointer to a table that cannot be one (unaligned, in other metadata, past the end).</summary>
    void CheckPointer(long offset);

    void Read(TableCache.Entry table);

    /// <summary>Writes a dirty table, after whatever must reach the disk before it.</summary>
    void WriteBack(TableCache.Entry table);
}

namespace SharpVmm.Emulator;

/// <summary>
/// The CPU state a page walk reads, copied by the vCPU for each walk (walks are the slow path): the paging controls,
/// the privilege level and RFLAGS.AC (SMAP), and PKRU (protection keys).
/// </summary>
internal struct PagingState
{
    public ulong Cr0, Cr3, Cr4, Efer;
    public int Cpl;
    public bool Ac;
    public uint Pkru;
}

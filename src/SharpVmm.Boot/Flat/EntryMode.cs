namespace SharpVmm.Boot.Flat;

/// <summary>The CPU mode a flat binary starts in.</summary>
public enum EntryMode
{
    /// <summary>16-bit real mode: CS = address >> 4, IP = address &amp; 0xF.</summary>
    Real,
    /// <summary>32-bit protected mode, flat 4 GiB segments, paging off: EIP = address.</summary>
    Protected,
    /// <summary>64-bit long mode, identity-mapped 2 MiB paging: RIP = address.</summary>
    Long,
}

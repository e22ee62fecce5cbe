namespace SharpVmm.Machine.Migration;

/// <summary>
/// SharpVmm's migration stream, source to target over one TCP connection, all integers little-endian:
/// <code>
/// header   "SVMM-MIG" version:u32 vcpus:u32 accel:str regions:u32 {base:u64 size:u64}* devices:u32 {id:str}* crc:u32
/// record   tag:u8 body crc:u32            (crc = CRC-32C of tag and body; str = len:u16 UTF-8)
///   'P'    gpa:u64 pages:u32 data[pages*4096]     a run of pages, page aligned, inside one RAM region
///   'Z'    gpa:u64 pages:u32                      a run of pages that are all zero
///   'I'    round:u32                              the end of one pre-copy round
///   'S'    length:u32 data[length]                the machine state (vCPUs, clock, devices): SaveMachineState's bytes
///   'E'    records:u64                            the end; counts the records before it
/// </code>
/// The target answers with acks, <c>"SVMM-ACK" status:u8 message:str crc:u32</c>: status 2 (message = the round)
/// once it has applied the pages up to an 'I' marker, so the source knows the pipe is drained before it pauses the
/// guest and the downtime holds only the last pages; after 'E', 0 = loaded and resuming, or 1 = refused (message says
/// why). The target sends a refusal as soon as it rejects anything, the header included.
/// </summary>
public static class MigrationProtocol
{
    public const uint Version = 1;
    public const int PageSize = 4096;
    public const int PageShift = 12;
    /// <summary>Pages in one 'P' record at most: 256 KiB, so a record is checked before it lands in RAM.</summary>
    public const int MaxRunPages = 64;
    /// <summary>Zero runs cost 17 bytes whatever their length; the cap only bounds one record's reach.</summary>
    public const int MaxZeroRunPages = 1 << 20;
    public const int MaxStateBytes = 256 << 20;
    public const int MaxStringBytes = 1024;
    public const int MaxRegions = 64;
    public const int MaxDevices = 1024;

    public static ReadOnlySpan<byte> Magic => "SVMM-MIG"u8;
    public static ReadOnlySpan<byte> AckMagic => "SVMM-ACK"u8;

    public const byte TagPages = (byte)'P';
    public const byte TagZeroPages = (byte)'Z';
    public const byte TagIterationEnd = (byte)'I';
    public const byte TagState = (byte)'S';
    public const byte TagEnd = (byte)'E';
}

/// <summary>What <see cref="MigrationStreamReader.Read"/> found next.</summary>
public enum MigrationRecordKind
{
    Pages,
    ZeroPages,
    IterationEnd,
    State,
    End,
}

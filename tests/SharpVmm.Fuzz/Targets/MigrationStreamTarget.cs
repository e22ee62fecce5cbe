using SharpVmm.Core;
using SharpVmm.Machine.Migration;
using SharpVmm.Machine.State;

namespace SharpVmm.Fuzz.Targets;

/// <summary>
/// An incoming migration stream: the header, every record to the end marker, and the machine state it carries. The
/// CRC-32C of the header and of each record (and the SHA-256 of the state inside) are recomputed first
/// (<see cref="ChecksumFixup"/>), so that mutations reach the parsers behind them.
/// </summary>
public static class MigrationStreamTarget
{
    public static void Run(byte[] data)
    {
        ChecksumFixup.MigrationStream(data);
        try
        {
            var reader = new MigrationStreamReader(new MemoryStream(data, writable: false), bufferSize: 1 << 16);
            reader.ReadHeader();
            for (int i = 0; i < 4096; i++)
            {
                var kind = reader.Read();
                if (kind == MigrationRecordKind.State)
                    MachineStateFormat.Read(new MemoryStream(reader.Payload.ToArray(), writable: false));
                if (kind == MigrationRecordKind.End) break;
            }
        }
        catch (VmmException) { }
        catch (IOException) { }
    }
}

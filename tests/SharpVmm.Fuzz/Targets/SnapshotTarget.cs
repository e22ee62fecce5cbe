using SharpVmm.Core;
using SharpVmm.Machine.State;

namespace SharpVmm.Fuzz.Targets;

/// <summary>
/// A snapshot as --restore reads it, without its RAM: the input is the header page followed by the machine-state
/// section (a real file keeps RAM between them, megabytes no fuzzer mutates well). The header is decoded as if the
/// file were as long as it says; the state section is read whatever the header said about it. The checksums of both
/// parts are recomputed first (<see cref="ChecksumFixup"/>), so that mutations reach the parsers behind them.
/// </summary>
public static class SnapshotTarget
{
    public static void Run(byte[] data)
    {
        if (data.Length >= SnapshotFormat.HeaderSize)
        {
            ChecksumFixup.SnapshotHeader(data.AsSpan(0, SnapshotFormat.HeaderSize));
            ChecksumFixup.MachineState(data.AsSpan(SnapshotFormat.HeaderSize));
        }
        else
        {
            ChecksumFixup.MachineState(data);
        }
        try
        {
            if (data.Length >= SnapshotFormat.HeaderSize)
            {
                try { SnapshotFormat.Decode(data.AsSpan(0, SnapshotFormat.HeaderSize), 1L << 40, "fuzz.snap"); }
                catch (VmmException) { }
                MachineStateFormat.Read(new MemoryStream(data, SnapshotFormat.HeaderSize, data.Length - SnapshotFormat.HeaderSize, writable: false));
            }
            else
            {
                MachineStateFormat.Read(new MemoryStream(data, writable: false));
            }
        }
        catch (VmmException) { }
        catch (IOException) { }
    }
}

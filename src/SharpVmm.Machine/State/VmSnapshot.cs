using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using SharpVmm.Core;
using SharpVmm.Core.State;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Machine.Migration;
using SharpVmm.Memory;

namespace SharpVmm.Machine.State;

/// <summary>A snapshot file could not be written or read (I/O, permissions); a malformed one is a <see cref="StateFormatException"/>.</summary>
public sealed class SnapshotException(string message, Exception? inner = null) : VmmException(message, inner!);

/// <summary>How guest RAM came back from a snapshot file.</summary>
public enum RamRestoreMode
{
    /// <summary>Mapped copy-on-write from the file: pages are read when the guest first touches them.</summary>
    MappedLazily,
    /// <summary>Read into anonymous memory up front (the file could not be mapped, or mapping was turned off).</summary>
    Read,
}

public sealed record SnapshotSaveResult(string Path, long FileBytes, long StoredPages, long ZeroPages, TimeSpan Elapsed);

public sealed record SnapshotRestoreResult(RamRestoreMode Mode, string? Why, TimeSpan Elapsed)
{
    public string Describe() => Mode == RamRestoreMode.MappedLazily
        ? "RAM mapped lazily from the snapshot (copy-on-write)"
        : $"RAM read from the snapshot ({Why})";
}

/// <summary>
/// Whole-VM snapshots in one file (<see cref="SnapshotFormat"/>): <see cref="Save"/> writes header, machine state and
/// RAM (sparse: zero pages are holes); <see cref="Restore"/> loads them into a VM freshly built from the same
/// configuration, mapping RAM from the file copy-on-write where the kernel allows, so a large guest resumes at once.
/// </summary>
public static class VmSnapshot
{
    private const int IoChunk = 8 << 20;

    /// <summary>
    /// Saves <paramref name="vm"/> to <paramref name="path"/>. A running VM is paused for the save and resumed after
    /// (QEMU's savevm); a paused or not-yet-started one stays as it is. The file is written beside its final name and
    /// renamed over it, so a VM restored from an older file of that name keeps its (mapped) pages.
    /// </summary>
    public static SnapshotSaveResult Save(VirtualMachine vm, string path, string tag = "")
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var sw = Stopwatch.StartNew();
        bool paused = false;
        if (vm.State == VmState.Running)
        {
            vm.Pause();
            paused = true;
        }
        try
        {
            var state = new MemoryStream();
            vm.SaveMachineState(state);
            var (bytes, stored, zero) = WriteFile(vm, path, tag, state.GetBuffer().AsSpan(0, (int)state.Length));
            return new SnapshotSaveResult(Path.GetFullPath(path), bytes, stored, zero, sw.Elapsed);
        }
        finally
        {
            if (paused && vm.State == VmState.Paused) vm.Resume();
        }
    }

    private static (long Bytes, long Stored, long Zero) WriteFile(VirtualMachine vm, string path, string tag, ReadOnlySpan<byte> state)
    {
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        var regions = new List<SnapshotFormat.Region>();
        long stateOffset = SnapshotFormat.HeaderSize;
        long offset = SnapshotFormat.AlignUp(stateOffset + state.Length);
        long stored = 0, zero = 0;
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
            {
                RandomAccess.Write(handle, state, stateOffset);
                foreach (var region in vm.Memory.Regions)
                {
                    long pages = WriteRegion(handle, vm.Memory, region, offset, ref zero);
                    stored += pages;
                    regions.Add(new SnapshotFormat.Region(region.GuestBase, region.Size, offset, pages));
                    offset = SnapshotFormat.AlignUp(offset + (long)region.Size);
                }
                long checksumOffset = offset;
                WriteChecksums(handle, vm.Memory, checksumOffset);
                var devices = new List<(string, string)>();
                foreach (var device in vm.Devices.All) devices.Add((device.Id, device.Kind));
                var header = new SnapshotFormat.Header
                {
                    Accelerator = vm.Accelerator.Name, Cpus = vm.VcpuCount, RamBytes = vm.Memory.TotalSize, Devices = devices,
                    CreatedUtc = DateTime.UtcNow, Tag = tag, StateOffset = stateOffset, StateLength = state.Length, Regions = regions,
                    ChecksumOffset = checksumOffset,
                };
                // Trailing zero pages are holes too, so the length is set rather than written.
                RandomAccess.SetLength(handle, header.FileLength);
                RandomAccess.Write(handle, SnapshotFormat.Encode(header), 0);
            }
            File.Move(temp, full, overwrite: true);
            return (new FileInfo(full).Length, stored, zero);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new SnapshotException($"cannot write snapshot '{path}': {e.Message}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>CRC-32C of every RAM page, region by region, so a restore can tell a damaged page.</summary>
    private static void WriteChecksums(SafeFileHandle handle, GuestMemory memory, long offset)
    {
        const int page = SnapshotFormat.PageSize;
        long pages = 0;
        foreach (var region in memory.Regions) pages += (long)(region.Size / page);
        var table = new byte[pages * 4];
        long i = 0;
        foreach (var region in memory.Regions)
            for (ulong a = 0; a < region.Size; a += page, i++)
                BinaryPrimitives.WriteUInt32LittleEndian(table.AsSpan((int)(i * 4)), Crc32C.Append(0, memory.GetReadOnlySpan(region.GuestBase + a, page)));
        RandomAccess.Write(handle, table, offset);
    }

    /// <summary>Checks every restored page against its saved checksum; a mismatch names the page.</summary>
    private static void VerifyChecksums(SafeFileHandle handle, GuestMemory memory, SnapshotFormat.Header header, string path)
    {
        if (header.ChecksumOffset == 0) return; // a version 1 file has none
        const int page = SnapshotFormat.PageSize;
        var table = new byte[header.PageCount * 4];
        if (ReadFully(handle, table, header.ChecksumOffset) != table.Length)
            throw new StateFormatException($"snapshot '{path}' is truncated inside its page checksums");
        long i = 0;
        foreach (var region in memory.Regions)
            for (ulong a = 0; a < region.Size; a += page, i++)
            {
                uint want = BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan((int)(i * 4)));
                if (Crc32C.Append(0, memory.GetReadOnlySpan(region.GuestBase + a, page)) != want)
                    throw new StateFormatException($"snapshot '{path}' is damaged: the RAM page at guest address 0x{region.GuestBase + a:x} does not match its checksum");
            }
    }

    /// <summary>Writes the non-zero pages of a region in runs; returns how many pages were written.</summary>
    private static long WriteRegion(SafeFileHandle handle, GuestMemory memory, MemoryRegion region, long fileOffset, ref long zeroPages)
    {
        const int page = SnapshotFormat.PageSize;
        long pages = (long)(region.Size / page), stored = 0;
        long runStart = -1;
        for (long p = 0; p <= pages; p++)
        {
            bool data = p < pages && memory.GetReadOnlySpan(region.GuestBase + (ulong)(p * page), page).IndexOfAnyExcept((byte)0) >= 0;
            if (data)
            {
                if (runStart < 0) runStart = p;
                stored++;
                if ((p - runStart + 1) * page < IoChunk) continue;
                FlushRun(handle, memory, region, fileOffset, runStart, p + 1);
                runStart = -1;
                continue;
            }
            if (p < pages) zeroPages++;
            if (runStart >= 0)
            {
                FlushRun(handle, memory, region, fileOffset, runStart, p);
                runStart = -1;
            }
        }
        return stored;
    }

    private static void FlushRun(SafeFileHandle handle, GuestMemory memory, MemoryRegion region, long fileOffset, long first, long end)
    {
        const int page = SnapshotFormat.PageSize;
        RandomAccess.Write(handle, memory.GetReadOnlySpan(region.GuestBase + (ulong)(first * page), (int)((end - first) * page)), fileOffset + first * page);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Reads and checks a snapshot's header (what it was taken of) without loading anything.</summary>
    public static SnapshotFormat.Header ReadHeader(string path)
    {
        using var handle = Open(path);
        return ReadHeader(handle, path);
    }

    private static SnapshotFormat.Header ReadHeader(SafeFileHandle handle, string path)
    {
        long length = RandomAccess.GetLength(handle);
        var page = new byte[SnapshotFormat.HeaderSize];
        int n = ReadFully(handle, page, 0);
        return SnapshotFormat.Decode(page.AsSpan(0, n), length, path);
    }

    /// <summary>
    /// Loads the snapshot at <paramref name="path"/> into <paramref name="vm"/>, which must be built from the
    /// configuration the snapshot was taken with and be not yet started or paused; <see cref="VirtualMachine.Start"/>
    /// (or Resume) then continues the guest. RAM is mapped from the file (lazily, copy-on-write) unless <paramref name="mapRam"/> is false or the
    /// kernel refuses, in which case it is read; the result says which. A truncated, corrupt or mismatching snapshot
    /// throws <see cref="StateFormatException"/> saying what is wrong; the VM must then be discarded.
    /// </summary>
    public static SnapshotRestoreResult Restore(VirtualMachine vm, string path, bool mapRam = true)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var sw = Stopwatch.StartNew();
        using var handle = Open(path);
        var header = ReadHeader(handle, path);
        if (vm.State is not (VmState.Created or VmState.Paused))
            throw new VmmException($"a snapshot can only be restored into a VM that is paused or has not started (this one is {vm.State.ToString().ToLowerInvariant()})");
        if (header.Accelerator != vm.Accelerator.Name)
            throw new StateFormatException($"snapshot '{path}' was taken on the {header.Accelerator} accelerator, this VM uses {vm.Accelerator.Name}: add --accel {header.Accelerator}");
        if (header.Cpus != vm.VcpuCount)
            throw new StateFormatException($"snapshot '{path}' has {header.Cpus} vCPU(s), this VM {vm.VcpuCount}: add --cpus {header.Cpus}");
        if (header.RamBytes != vm.Memory.TotalSize)
            throw new StateFormatException($"snapshot '{path}' has {header.RamBytes >> 20} MiB of RAM, this VM {vm.Memory.TotalSize >> 20} MiB: add --memory {header.RamBytes >> 20}M");
        var regions = vm.Memory.Regions;
        if (header.Regions.Count != regions.Count)
            throw new StateFormatException($"snapshot '{path}' lays RAM out in {header.Regions.Count} region(s), this VM in {regions.Count}");
        for (int i = 0; i < regions.Count; i++)
            if (header.Regions[i].GuestBase != regions[i].GuestBase || header.Regions[i].Size != regions[i].Size)
                throw new StateFormatException($"snapshot '{path}' RAM region {i} is 0x{header.Regions[i].GuestBase:x}+0x{header.Regions[i].Size:x}, this VM's is 0x{regions[i].GuestBase:x}+0x{regions[i].Size:x}");

        // The machine state is checked (checksum, structure) before RAM is touched, and applied after it, so that
        // devices that come alive on restore (a console's input) see the guest's RAM, not the boot payload.
        var state = new byte[header.StateLength];
        if (ReadFully(handle, state, header.StateOffset) != state.Length)
            throw new StateFormatException($"snapshot '{path}' is truncated inside its machine state");
        MachineStateFormat.Read(new MemoryStream(state, writable: false)).CheckMatches(vm);

        RamRestoreMode mode = RamRestoreMode.MappedLazily;
        string? why = mapRam ? null : "mapping was turned off";
        if (!mapRam) mode = RamRestoreMode.Read;
        for (int i = 0; i < regions.Count; i++)
        {
            var region = regions[i];
            long fileOffset = header.Regions[i].FileOffset;
            if (mode == RamRestoreMode.MappedLazily)
            {
                try
                {
                    vm.Memory.MapFromFile(region, handle, fileOffset);
                    continue;
                }
                catch (GuestMemoryException e)
                {
                    mode = RamRestoreMode.Read;
                    why = e.Message;
                }
            }
            ReadRegion(vm.Memory, handle, region, fileOffset, path);
        }
        VerifyChecksums(handle, vm.Memory, header, path);
        vm.LoadMachineState(new MemoryStream(state, writable: false));
        return new SnapshotRestoreResult(mode, why, sw.Elapsed);
    }

    private static void ReadRegion(GuestMemory memory, SafeFileHandle handle, MemoryRegion region, long fileOffset, string path)
    {
        for (ulong done = 0; done < region.Size;)
        {
            int n = (int)Math.Min(region.Size - done, IoChunk);
            var span = memory.GetWritableSpan(region.GuestBase + done, n);
            if (ReadFully(handle, span, fileOffset + (long)done) != n)
                throw new StateFormatException($"snapshot '{path}' is truncated inside guest RAM at 0x{region.GuestBase + done:x}");
            done += (ulong)n;
        }
    }

    private static int ReadFully(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(handle, buffer[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private static SafeFileHandle Open(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SnapshotException($"cannot open snapshot '{path}': {e.Message}", e);
        }
    }
}

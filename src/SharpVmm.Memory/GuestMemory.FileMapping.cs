using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Memory;

public sealed unsafe partial class GuestMemory
{
    /// <summary>
    /// Replaces the whole of <paramref name="region"/> with a private, copy-on-write mapping of
    /// <paramref name="file"/> from <paramref name="fileOffset"/> (MAP_FIXED | MAP_PRIVATE at the region's host
    /// address, so accelerators that cached the address keep using it): pages are read from the file when the guest
    /// first touches them and the file itself is never written. A hole in a sparse file reads as zeros.
    /// The file must stay unchanged while the mapping lives (replace it by renaming a new file over it, never by
    /// rewriting it in place). Throws <see cref="GuestMemoryException"/> if the kernel refuses; the region then holds
    /// fresh zeroed anonymous memory, so the caller can fall back to reading the file into it.
    /// </summary>
    public void MapFromFile(MemoryRegion region, SafeFileHandle file, long fileOffset)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(region);
        ArgumentNullException.ThrowIfNull(file);
        if (Array.IndexOf(_regions, region) < 0) throw new ArgumentException("the region does not belong to this guest memory", nameof(region));
        if (fileOffset < 0 || (fileOffset & 0xFFF) != 0)
            throw new GuestMemoryException($"file offset {fileOffset} for mapping guest RAM must be a non-negative multiple of 4096");
        long length = RandomAccess.GetLength(file);
        if ((ulong)length < (ulong)fileOffset + region.Size)
            throw new GuestMemoryException($"the file is {length} bytes, too short to map {region.Size >> 20} MiB of guest RAM from offset {fileOffset}");
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            int fd = (int)file.DangerousGetHandle();
            nint p = Libc.Mmap((nint)region.Host, (nuint)region.Size, Libc.ProtRead | Libc.ProtWrite,
                Libc.MapPrivate | Libc.MapFixed | Libc.MapNoReserve, fd, fileOffset);
            if (p == Libc.MapFailed)
            {
                int errno = Marshal.GetLastPInvokeError();
                RemapAnonymous(region);
                throw new GuestMemoryException($"cannot map guest RAM from the file (mmap errno {errno})");
            }
            if (p != (nint)region.Host)
            {
                // Cannot happen with MAP_FIXED; never leave the region pointing at memory we did not ask for.
                Libc.Munmap(p, (nuint)region.Size);
                RemapAnonymous(region);
                throw new GuestMemoryException("the kernel mapped the file at another address than the one asked for");
            }
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
        FileMappingFaults.Watch((nint)region.Host, region.Size, FileName(file), region.GuestBase);
        // Advice is best effort here: a file-backed mapping may not take it, and the guest runs either way.
        if (Options.Merge) Libc.Madvise((nint)region.Host, (nuint)region.Size, Libc.MadvMergeable);
        if (Options.HugePages) Libc.Madvise((nint)region.Host, (nuint)region.Size, Libc.MadvHugepage);
        WriteObserver?.Invoke(region.GuestBase, region.Size);
    }

    private static string FileName(SafeFileHandle file)
    {
        try { return new FileInfo($"/proc/self/fd/{(int)file.DangerousGetHandle()}").LinkTarget ?? "the snapshot file"; }
        catch (IOException) { return "the snapshot file"; }
    }

    /// <summary>Gives <paramref name="region"/> fresh zeroed anonymous memory at the same host address.</summary>
    private static void RemapAnonymous(MemoryRegion region)
    {
        FileMappingFaults.Forget((nint)region.Host);
        nint p = Libc.Mmap((nint)region.Host, (nuint)region.Size, Libc.ProtRead | Libc.ProtWrite,
            Libc.MapPrivate | Libc.MapAnonymous | Libc.MapFixed | Libc.MapNoReserve, -1, 0);
        if (p != (nint)region.Host)
            throw new GuestMemoryException($"guest RAM at 0x{region.GuestBase:x} could not be re-established after a failed file mapping (errno {Marshal.GetLastPInvokeError()}): the VM cannot continue");
    }
}

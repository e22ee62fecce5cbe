using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SharpVmm.Block;

/// <summary>The few Linux file calls .NET does not expose: hole punching, preallocation, data/hole seeking, fsync.</summary>
internal static class FileSyscalls
{
    private const int FALLOC_FL_KEEP_SIZE = 1;
    private const int FALLOC_FL_PUNCH_HOLE = 2;
    private const int SEEK_DATA = 3;
    private const int SEEK_HOLE = 4;

    public static bool PunchHole(SafeFileHandle fd, long offset, long length)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { return Libc.Fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0; }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return false; }
    }

    public static bool Preallocate(SafeFileHandle fd, long offset, long length)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { return Libc.Fallocate(fd, 0, offset, length) == 0; }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return false; }
    }

    /// <summary>Start of the next data at or after offset; -2 when only a hole follows (ENXIO); -1 when the filesystem cannot say.</summary>
    public static long SeekData(SafeFileHandle fd, long offset) => Seek(fd, offset, SEEK_DATA);
    public static long SeekHole(SafeFileHandle fd, long offset) => Seek(fd, offset, SEEK_HOLE);

    private static long Seek(SafeFileHandle fd, long offset, int whence)
    {
        if (!OperatingSystem.IsLinux() || !RuntimeInformation.ProcessArchitecture.Equals(Architecture.X64)) return -1;
        try
        {
            var r = Libc.Lseek(fd, offset, whence);
            if (r < 0 && Marshal.GetLastPInvokeError() == 6 /* ENXIO */) return -2;
            return r;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return -1; }
    }

    public static void DataSync(SafeFileHandle fd)
    {
        if (OperatingSystem.IsLinux())
        {
            if (Libc.Fdatasync(fd) != 0)
                throw new IOException($"fdatasync failed (errno {Marshal.GetLastPInvokeError()}); the data may not be on disk");
        }
    }

    /// <summary>Bytes allocated on disk (st_blocks * 512), or the file length when unknown.</summary>
    public static long AllocatedBytes(SafeFileHandle fd)
    {
        if (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64)
        {
            try { if (Libc.Fstat(fd, out var st) == 0) return st.Blocks * 512; }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { }
        }
        return RandomAccess.GetLength(fd);
    }
}

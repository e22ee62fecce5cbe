using System.Buffers;
using Microsoft.Win32.SafeHandles;
using SharpVmm.Core;
using SharpVmm.Memory;

namespace SharpVmm.Machine.Board;

/// <summary>
/// A kernel or initrd kept open rather than in memory. It is read when the VM starts and again at every reset (the
/// guest overwrites its own copy in RAM), each time into a mapping of its own that is unmapped once the loader has copied it:
/// holding the bytes for the VM's lifetime would cost a Linux guest ~15 MiB of resident memory for nothing.
/// The open handle keeps the original file readable if it is replaced (renamed over) while the VM runs; a file changed
/// in place is refused at reset rather than booted half old, half new.
/// </summary>
internal sealed class BootFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly long _length;
    private readonly DateTime _written;

    private BootFile(string path, string what, SafeFileHandle handle)
    {
        Path = path;
        What = what;
        _handle = handle;
        _length = RandomAccess.GetLength(handle);
        _written = File.GetLastWriteTimeUtc(handle);
    }

    public string Path { get; }
    public string What { get; }

    public static BootFile Open(string path, string what)
    {
        // Opening a FIFO would block until a writer comes; reading a character device would not end.
        if (SharpVmm.Block.HostFile.Problem(path, what) is { } problem) throw new ConfigurationException(problem);
        SafeFileHandle? handle = null;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var file = new BootFile(path, what, handle);
            if (file._length > int.MaxValue) throw new ConfigurationException($"{what} '{path}' is larger than 2 GiB");
            return file;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            handle?.Dispose();
            throw new ConfigurationException($"cannot read {what} '{path}': {ex.Message}");
        }
    }

    /// <summary>The file's bytes in a buffer the caller disposes as soon as they are copied into guest RAM.</summary>
    public IMemoryOwner<byte> Read()
    {
        if (RandomAccess.GetLength(_handle) != _length || File.GetLastWriteTimeUtc(_handle) != _written)
            throw new IOException($"{What} '{Path}' was modified after the VM started; restart the VM to boot the new file");
        var buffer = new HostBuffer((int)_length);
        try
        {
            var span = buffer.GetSpan();
            for (int done = 0; done < span.Length;)
            {
                int n = RandomAccess.Read(_handle, span[done..], done);
                if (n == 0) throw new IOException($"{What} '{Path}' ended early while reading it");
                done += n;
            }
            return buffer;
        }
        catch
        {
            ((IDisposable)buffer).Dispose();
            throw;
        }
    }

    public void Dispose() => _handle.Dispose();
}

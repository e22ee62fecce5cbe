using SharpVmm.Block;
using SharpVmm.Core.State;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// A VM's disk image that can be handed over in a live migration, as QEMU's inactive block nodes: source and target
/// share the image file, and only one side may have it open at a time, because each caches format metadata (qcow2's
/// L1/L2 and refcount tables) that the other's writes would make stale. The target builds its VM with the image
/// inactive (nothing cached, nothing written); the source flushes and closes it once the guest is paused for the
/// last copy (<see cref="Inactivate"/>); the target opens it (<see cref="Activate"/>) after the source has let go and
/// before the guest runs. A migration that fails after that point re-activates the source's image.
/// Requests that reach an inactive image fail with an <see cref="IOException"/>, which virtio-blk reports to the
/// guest as an I/O error; a paused or not yet started guest makes none.
/// Its saved state is the disk's format and size, so a snapshot or migration is refused onto a different disk.
/// </summary>
public sealed class MigratableImage : IBlockImage, IStateful
{
    private readonly ImageOpenOptions _options;
    private readonly object _gate = new();
    private volatile IBlockImage? _inner;

    private MigratableImage(string path, ImageOpenOptions options, IBlockImage? inner, string format, long size)
    {
        Path = path;
        _options = options;
        _inner = inner;
        FormatName = format;
        Size = size;
    }

    /// <summary>Opens the image now (an ordinary VM, or the source of a migration).</summary>
    public static MigratableImage OpenActive(string path, ImageOpenOptions options)
    {
        var image = ImageFactory.Open(path, options);
        return new MigratableImage(path, options, image, image.FormatName, image.Size);
    }

    /// <summary>
    /// For a VM that will receive its state by migration: the image is read once, read-only, for its size and format
    /// (the guest's disk geometry), and closed; <see cref="Activate"/> opens it for real.
    /// </summary>
    public static MigratableImage OpenInactive(string path, ImageOpenOptions options)
    {
        using var probe = ImageFactory.Open(path, options with { ReadOnly = true, ForceShare = true });
        return new MigratableImage(path, options, null, probe.FormatName, probe.Size);
    }

    public bool IsActive => _inner is not null;

    /// <summary>The open image behind the wrapper (qcow2 or raw), for management that shows format details; null while inactive.</summary>
    public IBlockImage? Current => _inner;

    public string Path { get; }
    public string FormatName { get; }
    public long Size { get; private set; }
    public bool IsReadOnly => _options.ReadOnly;
    public IBlockImage? Backing => _inner?.Backing;
    /// <summary>While inactive (the other side of a migration has it), the file's length: management still asks (query-block).</summary>
    public long ActualSize => _inner is { } image ? image.ActualSize : FileLength();

    private long FileLength()
    {
        try { return new FileInfo(Path).Length; }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return 0; }
    }

    /// <summary>Flushes and closes the image: from now on the other side of the migration may open it.</summary>
    public void Inactivate()
    {
        lock (_gate)
        {
            var image = _inner;
            if (image is null) return;
            _inner = null;
            try
            {
                if (!image.IsReadOnly) image.Flush();
            }
            finally
            {
                image.Dispose();
            }
        }
    }

    /// <summary>Opens the image (again), reading its metadata afresh; a disk whose size changed meanwhile is refused.</summary>
    public void Activate()
    {
        lock (_gate)
        {
            if (_inner is not null) return;
            IBlockImage image;
            try
            {
                image = ImageFactory.Open(Path, _options);
            }
            catch (BlockImageException ex)
            {
                throw new MigrationException($"cannot open the disk '{Path}' after migration: {ex.Message}", ex);
            }
            if (image.Size != Size)
            {
                image.Dispose();
                throw new MigrationException($"the disk '{Path}' is {image.Size} bytes now, {Size} when the VM was built: it changed during the migration");
            }
            _inner = image;
        }
    }

    private IBlockImage Image => _inner
        ?? throw new IOException($"the disk '{Path}' is inactive: it belongs to the other side of a live migration");

    public void Read(long offset, Span<byte> buffer) => Image.Read(offset, buffer);
    public void Write(long offset, ReadOnlySpan<byte> data) => Image.Write(offset, data);
    public void WriteZeroes(long offset, long length, bool unmap) => Image.WriteZeroes(offset, length, unmap);
    public void Discard(long offset, long length) => Image.Discard(offset, length);
    public void Flush() => Image.Flush();
    public BlockStatus GetStatus(long offset, long length) => Image.GetStatus(offset, length);

    public void Resize(long newSize, bool allowShrink)
    {
        Image.Resize(newSize, allowShrink);
        Size = newSize;
    }

    public string StateId => "disk-image";
    public int StateVersion => 1;

    public void SaveState(StateWriter writer)
    {
        writer.WriteString(FormatName);
        writer.WriteI64(Size);
    }

    public void LoadState(StateReader reader, int version)
    {
        string format = reader.ReadString(16, "the disk's format");
        long size = reader.ReadI64("the disk's size");
        if (format != FormatName || size != Size)
            throw new StateFormatException($"the disk '{Path}' is a {Size}-byte {FormatName} image here but was a {size}-byte {format} image in the saved machine: give the same disk");
    }

    public void Dispose()
    {
        lock (_gate)
        {
            var image = _inner;
            _inner = null;
            image?.Dispose();
        }
    }
}

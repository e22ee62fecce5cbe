using System.Buffers.Binary;
using SharpVmm.Block.Qcow2;
using SharpVmm.Block.Raw;

namespace SharpVmm.Block;

/// <summary>Opens images of either format, with their backing chains, and creates new ones.</summary>
public static class ImageFactory
{
    public static string Probe(string path)
    {
        if (HostFile.Problem(path, "disk image", blockDeviceOk: true) is { } problem) throw new BlockImageException(problem);
        try
        {
            using var fh = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            Span<byte> magic = stackalloc byte[4];
            var n = RandomAccess.Read(fh, magic, 0);
            return n == 4 && BinaryPrimitives.ReadUInt32BigEndian(magic) == Qcow2Header.Magic ? "qcow2" : "raw";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BlockImageException($"cannot open '{path}': {e.Message}", e);
        }
    }

    public static IBlockImage Open(string path, ImageOpenOptions? options = null)
    {
        options ??= new ImageOpenOptions();
        if (options.ForceShare && !options.ReadOnly)
            throw new BlockImageException($"cannot open '{path}': -U (--force-share) can only be used with read-only images");
        return OpenChain(path, options.Format, options, [], 0);
    }

    public static Qcow2Image OpenQcow2(string path, ImageOpenOptions? options = null)
    {
        options ??= new ImageOpenOptions { Format = "qcow2" };
        return Open(path, options with { Format = "qcow2" }) as Qcow2Image
               ?? throw new BlockImageException($"'{path}' is not a qcow2 image");
    }

    private static IBlockImage OpenChain(string path, string? format, ImageOpenOptions o, HashSet<string> seen, int depth)
    {
        if (!File.Exists(path)) throw new BlockImageException($"'{path}': no such image file");
        // A FIFO would block the open, a character device never end: an image is a file or a block device.
        if (HostFile.Problem(path, "disk image", blockDeviceOk: true) is { } problem) throw new BlockImageException(problem);
        var full = System.IO.Path.GetFullPath(path);
        try { full = new FileInfo(full).ResolveLinkTarget(true)?.FullName ?? full; } catch (IOException) { }
        if (!seen.Add(full))
            throw new BlockImageException($"'{path}' is its own backing file (the backing chain loops); fix it with 'sharpvmm img rebase -u'");
        if (depth > o.MaxChainDepth)
            throw new BlockImageException($"the backing chain of '{path}' is deeper than {o.MaxChainDepth} images");
        format ??= Probe(path);
        switch (format)
        {
            case "raw":
                return RawImage.Open(path, o.ReadOnly || depth > 0, o.IgnoreFlushes, o.ForceShare);
            case "qcow2":
                break;
            default:
                throw new BlockImageException($"unknown image format '{format}' (use raw or qcow2)");
        }
        var readOnly = o.ReadOnly || depth > 0;
        Microsoft.Win32.SafeHandles.SafeFileHandle fh;
        try
        {
            fh = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BlockImageException($"cannot open '{path}': {e.Message}", e);
        }
        Qcow2Image? img = null;
        try
        {
            ImageLock.Acquire(fh, path, AccessFor(readOnly, o.ForceShare));
            var len = RandomAccess.GetLength(fh);
            var head = ReadHeaderCluster(fh, len);
            var h = Qcow2Header.Parse(head, len, path);
            img = new Qcow2Image(path, fh, h, readOnly, o);
            if (h.BackingFile != null && o.OpenBacking)
            {
                var bpath = h.BackingFile;
                if (bpath.StartsWith("json:", StringComparison.Ordinal))
                    throw new BlockImageException($"'{path}' names its backing file with a json: description, which is not supported");
                if (!System.IO.Path.IsPathRooted(bpath))
                    bpath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".", bpath);
                try
                {
                    img.AttachBacking(OpenChain(bpath, h.BackingFormat, o with { Format = null }, seen, depth + 1));
                }
                catch (BlockImageException e) when (e.Message.Contains("no such image file", StringComparison.Ordinal) && !File.Exists(bpath))
                {
                    throw new BlockImageException($"'{path}': its backing file '{h.BackingFile}' does not exist; restore it or use 'sharpvmm img rebase -u -b NEW {path}'", e);
                }
            }
            if (!readOnly) img.PrepareForWriting(o.Repairing);
            return img;
        }
        catch
        {
            if (img != null) { try { img.DisposeWithoutFlush(); } catch (IOException) { } }
            else fh.Dispose();
            throw;
        }
    }

    internal static ImageAccess AccessFor(bool readOnly, bool forceShare) =>
        !readOnly ? ImageAccess.ReadWrite : forceShare ? ImageAccess.ReadShared : ImageAccess.ReadOnly;

    /// <summary>
    /// Opens a file to (re)create an image in: locked for writing before it is truncated, so a file another program
    /// (QEMU, a running VM) has open is refused rather than replaced under it.
    /// </summary>
    internal static Microsoft.Win32.SafeHandles.SafeFileHandle OpenForCreate(string path)
    {
        var fh = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        try
        {
            ImageLock.Acquire(fh, path, ImageAccess.ReadWrite);
            RandomAccess.SetLength(fh, 0);
            return fh;
        }
        catch
        {
            fh.Dispose();
            throw;
        }
    }

    public static IBlockImage Create(string path, string format, long size, CreateOptions? options = null)
    {
        options ??= new CreateOptions();
        if (size < 0) throw new BlockImageException("the image size must not be negative");
        return format switch
        {
            "raw" => RawImage.Create(path, size, options.Preallocation, options.IgnoreFlushes),
            "qcow2" => Qcow2Creator.Create(path, size, options),
            _ => throw new BlockImageException($"unknown image format '{format}' (use raw or qcow2)"),
        };
    }

    /// <summary>
    /// Cluster 0, where the header, its extensions and the backing file name must lie (Qcow2Header.Parse looks no
    /// further). Sized by the header's cluster_bits rather than the 2 MiB maximum: a 2 MiB buffer was ~500 page faults,
    /// a third of the start-up of `sharpvmm img info` on a 64 KiB-cluster image.
    /// </summary>
    private static byte[] ReadHeaderCluster(Microsoft.Win32.SafeHandles.SafeFileHandle fh, long len)
    {
        Span<byte> fixedPart = stackalloc byte[24];
        ImageFile.ReadFully(fh, 0, fixedPart);
        var bits = BinaryPrimitives.ReadInt32BigEndian(fixedPart[20..]);
        // An invalid cluster_bits is reported by Parse, which needs only the fixed header for that.
        var cluster = bits is >= 9 and <= 21 ? 1L << bits : 4096;
        var head = new byte[(int)Math.Min(len, cluster)];
        ImageFile.ReadFully(fh, 0, head);
        return head;
    }
}

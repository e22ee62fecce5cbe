using SharpVmm.Block;

namespace SharpVmm.Fuzz.Targets;

/// <summary>The qcow2 header, L1/L2 and refcount tables, snapshots and backing-file name, as opening and reading an image walks them.</summary>
public static class Qcow2Target
{
    public static void Run(byte[] data)
    {
        string path = ScratchFile.Write("image.qcow2", data);
        try
        {
            using var image = ImageFactory.OpenQcow2(path, new ImageOpenOptions { ReadOnly = true, OpenBacking = false, L2CacheBytes = 1 << 20 });
            var buffer = new byte[65536];
            long size = image.Size;
            // A few places across the disk: the start, the middle, the last cluster, and what block status says.
            foreach (long at in new[] { 0L, size / 2, Math.Max(0, size - buffer.Length) })
            {
                if (size == 0) break;
                int n = (int)Math.Min(buffer.Length, size - at);
                image.Read(at, buffer.AsSpan(0, n));
                image.GetStatus(at, n);
            }
        }
        catch (IOException) { }
        catch (Core.VmmException) { }
    }
}

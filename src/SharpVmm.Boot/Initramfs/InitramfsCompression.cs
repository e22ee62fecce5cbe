namespace SharpVmm.Boot.Initramfs;

/// <summary>How <see cref="InitramfsBuilder.Build(Stream, InitramfsCompression)"/> encodes the archive.</summary>
public enum InitramfsCompression
{
    /// <summary>gzip (CONFIG_RD_GZIP): small to load, but the guest spends instructions inflating it.</summary>
    Gzip,

    /// <summary>Plain cpio: larger, but the kernel only copies it, which is cheaper for a slow software CPU.</summary>
    None,
}

namespace SharpVmm.Devices.Virtio.Net;

/// <summary>virtio-net facts from the virtio 1.x specification, section 5.1.</summary>
public static class VirtioNetConstants
{
    public const int FeatureMac = 5;
    public const int FeatureStatus = 16;

    /// <summary>struct virtio_net_hdr with VERSION_1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers.</summary>
    public const int HeaderSize = 12;
    public const int HeaderGsoTypeOffset = 1;
    public const int HeaderNumBuffersOffset = 10;
    public const byte GsoNone = 0;

    /// <summary>Config space: mac[6], status (u16), max_virtqueue_pairs (u16; meaningful only with MQ, reads 1).</summary>
    public const int ConfigBytes = 10;
    public const ushort StatusLinkUp = 1;

    public const int EthernetHeaderSize = 14;
}

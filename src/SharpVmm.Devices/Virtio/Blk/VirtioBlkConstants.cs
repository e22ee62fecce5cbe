namespace SharpVmm.Devices.Virtio.Blk;

/// <summary>virtio-blk feature bits, request types and status values (virtio 1.x, 5.2).</summary>
public static class VirtioBlkConstants
{
    public const int FeatureSizeMax = 1, FeatureSegMax = 2, FeatureRo = 5, FeatureBlkSize = 6, FeatureFlush = 9;
    public const int FeatureDiscard = 13, FeatureWriteZeroes = 14;

    public const uint TypeIn = 0, TypeOut = 1, TypeFlush = 4, TypeGetId = 8, TypeDiscard = 11, TypeWriteZeroes = 13;
    public const byte StatusOk = 0, StatusIoErr = 1, StatusUnsupported = 2;

    public const int SectorSize = 512;
    public const int IdBytes = 20;
    public const int HeaderBytes = 16;
    public const int SegmentBytes = 16;
    public const uint SegmentFlagUnmap = 1;

    /// <summary>Size of struct virtio_blk_config up to write_zeroes_may_unmap and its padding.</summary>
    public const int ConfigBytes = 60;
}

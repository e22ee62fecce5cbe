namespace SharpVmm.Machine.Build;

public static partial class VmBuilder
{
    /// <summary>
    /// Whether virtio-blk disks serve requests on an I/O thread of their own (the default) or on the notifying vCPU's
    /// thread. SHARPVMM_BLK_IOTHREAD=0 selects the latter, to compare the two (bench/virtio-blk-dd.sh).
    /// </summary>
    private static bool BlkIoThread => Environment.GetEnvironmentVariable("SHARPVMM_BLK_IOTHREAD") != "0";
}

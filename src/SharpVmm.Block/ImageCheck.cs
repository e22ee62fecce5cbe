using SharpVmm.Block.Qcow2;

namespace SharpVmm.Block;

/// <summary>qemu-img check for a qcow2 file: counts (and on request repairs) leaks and corruptions.</summary>
public static class ImageCheck
{
    public static CheckResult Run(string path, CheckRepair repair, bool forceShare = false)
    {
        var options = repair == CheckRepair.None
            ? new ImageOpenOptions { Format = "qcow2", ReadOnly = true, OpenBacking = false, ForceShare = forceShare }
            : new ImageOpenOptions { Format = "qcow2", OpenBacking = false, Repairing = true, ForceShare = forceShare };
        using var img = ImageFactory.OpenQcow2(path, options);
        return Qcow2Checker.Check(img, repair);
    }
}

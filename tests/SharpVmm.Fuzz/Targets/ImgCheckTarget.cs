using SharpVmm.Block;
using SharpVmm.Block.Qcow2;

namespace SharpVmm.Fuzz.Targets;

/// <summary><c>img check</c> (no repair) over an arbitrary file: every table and refcount it cross-checks.</summary>
public static class ImgCheckTarget
{
    public static void Run(byte[] data)
    {
        string path = ScratchFile.Write("check.qcow2", data);
        try
        {
            ImageCheck.Run(path, CheckRepair.None);
        }
        catch (IOException) { }
        catch (Core.VmmException) { }
    }
}

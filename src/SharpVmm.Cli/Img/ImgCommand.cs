using System.CommandLine;

namespace SharpVmm.Cli.Img;

/// <summary><c>sharpvmm img</c>: qemu-img's subcommands with qemu-img's argument shapes.</summary>
public static class ImgCommand
{
    public static Command Create()
    {
        var img = new Command("img", "Create, inspect, check and convert raw and qcow2 disk images (qemu-img compatible)");
        img.Subcommands.Add(ImgCreate.Build());
        img.Subcommands.Add(ImgInfo.Build());
        img.Subcommands.Add(ImgCheck.Build());
        img.Subcommands.Add(ImgConvert.Build());
        img.Subcommands.Add(ImgResize.Build());
        img.Subcommands.Add(ImgSnapshot.Build());
        img.Subcommands.Add(ImgMap.Build());
        img.Subcommands.Add(ImgCommit.Build());
        img.Subcommands.Add(ImgRebase.Build());
        img.Subcommands.Add(ImgCompare.Build());
        return img;
    }
}

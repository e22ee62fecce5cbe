using System.Text.RegularExpressions;

namespace SharpVmm.Cli.Tests.Img;

/// <summary>info --backing-chain, convert -B and convert -n, each beside the real qemu-img.</summary>
public class ImgChainAndTargetTests
{
    private static string Extents(string path) =>
        Regex.Replace(ImgHarness.Qemu("map", "--output=json", path), @", ""offset"": \d+", "");

    private static void Io(string fmt, string img, params string[] cmds)
    {
        var args = new List<string> { "-f", fmt };
        foreach (var c in cmds) { args.Add("-c"); args.Add(c); }
        args.Add(img);
        var (code, o, e) = ImgHarness.Tool(ImgHarness.QemuIoPath!, [.. args]);
        if (code != 0 || o.Contains("verification failed", StringComparison.Ordinal) || e.Length > 0)
            throw new Xunit.Sdk.XunitException($"qemu-io {string.Join(' ', cmds)}: {e}{o}");
    }

    [QemuFact]
    public void Info_backing_chain_prints_every_image_as_qemu_img_does()
    {
        using var d = new Scratch();
        ImgHarness.Qemu("create", "-q", "-f", "raw", d["base.raw"], "2M");
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", d["mid.qcow2"]);
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "mid.qcow2", "-F", "qcow2", d["top.qcow2"]);
        ImgHarness.Qemu("snapshot", "-c", "s1", d["mid.qcow2"]);
        foreach (var output in new[] { "human", "json" })
        {
            var ours = ImgHarness.Ok("info", "--backing-chain", $"--output={output}", d["top.qcow2"]);
            var theirs = ImgHarness.Qemu("info", "--backing-chain", $"--output={output}", d["top.qcow2"]);
            // Snapshot dates and disk usage come from the clock and the filesystem: compare everything else exactly.
            static string Stable(string s) => Regex.Replace(s, @"(date-sec|date-nsec|actual-size)"": \d+|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|disk size: .*", "");
            Assert.Equal(Stable(theirs), Stable(ours));
        }
        Assert.Equal(3, Regex.Matches(ImgHarness.Ok("info", "--backing-chain", d["top.qcow2"]), "^image: ", RegexOptions.Multiline).Count);

        // A chain that loops is refused with a message, not followed forever.
        ImgHarness.Qemu("rebase", "-u", "-b", "top.qcow2", "-F", "qcow2", d["mid.qcow2"]);
        var (code, _, err) = ImgHarness.Run("info", "--backing-chain", d["top.qcow2"]);
        Assert.NotEqual(0, code);
        Assert.Contains("loop", err, StringComparison.Ordinal);
    }

    [QemuFact]
    public void Convert_with_a_backing_file_copies_only_the_top_image_like_qemu_img()
    {
        using var d = new Scratch();
        var b = d["base.qcow2"];
        var t = d["top.qcow2"];
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", b, "8M");
        ImgHarness.QemuIo(b, "write -P 1 0 4M");
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", t);
        // Top-image data, zero clusters over backing data, and zero bytes written as data over backing data.
        ImgHarness.QemuIo(t, "write -P 2 1M 128k", "write -z 2M 64k", "write -P 0 3M 64k", "write -P 3 6M 4k");
        ImgHarness.Ok("convert", "-f", "qcow2", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2", t, d["ours.qcow2"]);
        ImgHarness.Qemu("convert", "-f", "qcow2", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2", t, d["theirs.qcow2"]);
        ImgHarness.Qemu("check", d["ours.qcow2"]);
        ImgHarness.Qemu("compare", t, d["ours.qcow2"]);
        Assert.Contains("backing file: base.qcow2", ImgHarness.Qemu("info", d["ours.qcow2"]), StringComparison.Ordinal);
        Assert.Equal(Extents(d["theirs.qcow2"]).Replace("theirs", "x"), Extents(d["ours.qcow2"]).Replace("ours", "x"));

        var (code, _, err) = ImgHarness.Run("convert", "-O", "raw", "-B", "base.qcow2", t, d["x.raw"]);
        Assert.NotEqual(0, code);
        Assert.Contains("qcow2", err, StringComparison.Ordinal);
    }

    [QemuTheory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public void Convert_into_an_existing_target_overwrites_its_old_data(string fmt)
    {
        using var d = new Scratch();
        var s = d["src.qcow2"];
        var t = d["target." + fmt];
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", s, "6M");
        ImgHarness.QemuIo(s, "write -P 7 0 1M", "write -z 1M 1M", "write -P 8 5M 8k");
        ImgHarness.Qemu("create", "-q", "-f", fmt, t, "8M");
        Io(fmt, t, "write -P 0x55 0 8M");
        ImgHarness.Ok("convert", "-n", "-f", "qcow2", "-O", fmt, s, t);
        // The first 6 MiB now match the source (old data under its zero and unallocated ranges is gone); the rest stays.
        Io(fmt, t, "read -P 7 0 1M", "read -P 0 1M 4M", "read -P 8 5M 8k", "read -P 0 5128k 1016k", "read -P 0x55 6M 2M");
        if (fmt == "qcow2") ImgHarness.Qemu("check", t);

        ImgHarness.Qemu("create", "-q", "-f", fmt, d["small." + fmt], "1M");
        var (code, _, err) = ImgHarness.Run("convert", "-n", "-O", fmt, s, d["small." + fmt]);
        Assert.NotEqual(0, code);
        Assert.Contains("smaller", err, StringComparison.Ordinal);
    }
}


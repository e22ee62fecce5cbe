using System.Text.Json;

namespace SharpVmm.Cli.Tests.Img;

public class ImgCommandTests
{
    private static JsonElement ParseJson(string s) => JsonDocument.Parse(s).RootElement;

    [QemuFact]
    public void Create_with_options_is_seen_by_qemu_img_info_as_asked()
    {
        using var d = new Scratch();
        var p = d["a.qcow2"];
        ImgHarness.Ok("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k,compat=1.1,lazy_refcounts=on,refcount_bits=64", p, "100M");
        var info = ParseJson(ImgHarness.Qemu("info", "--output=json", p));
        Assert.Equal(100L << 20, info.GetProperty("virtual-size").GetInt64());
        Assert.Equal(4096, info.GetProperty("cluster-size").GetInt32());
        var data = info.GetProperty("format-specific").GetProperty("data");
        Assert.Equal("1.1", data.GetProperty("compat").GetString());
        Assert.True(data.GetProperty("lazy-refcounts").GetBoolean());
        Assert.Equal(64, data.GetProperty("refcount-bits").GetInt32());
        ImgHarness.Qemu("check", p);

        ImgHarness.Ok("create", "-q", "-f", "qcow2", "-o", "compat=0.10,preallocation=metadata", d["v2.qcow2"], "10M");
        ImgHarness.Qemu("check", d["v2.qcow2"]);
        var v2 = ParseJson(ImgHarness.Qemu("info", "--output=json", d["v2.qcow2"]));
        Assert.Equal("0.10", v2.GetProperty("format-specific").GetProperty("data").GetProperty("compat").GetString());
        var map = ImgHarness.Qemu("map", "--output=json", d["v2.qcow2"]);
        Assert.Contains("\"data\": true", map, StringComparison.Ordinal);
    }

    [QemuFact]
    public void Info_json_matches_qemu_img_field_for_field()
    {
        using var d = new Scratch();
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", d["base.qcow2"], "10M");
        ImgHarness.QemuIo(d["base.qcow2"], "write -P 0x11 0 128k");
        ImgHarness.Qemu("snapshot", "-c", "s1", d["base.qcow2"]);
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", d["ov.qcow2"]);
        foreach (var f in new[] { "base.qcow2", "ov.qcow2" })
        {
            var ours = ParseJson(ImgHarness.Ok("info", "--output=json", d[f]));
            var theirs = ParseJson(ImgHarness.Qemu("info", "--output=json", d[f]));
            foreach (var prop in theirs.EnumerateObject())
            {
                Assert.True(ours.TryGetProperty(prop.Name, out var mine), $"{f}: field {prop.Name} missing");
                if (prop.Name == "actual-size") continue;
                Assert.Equal(prop.Value.ToString(), mine.ToString());
            }
        }
        var human = ImgHarness.Ok("info", d["ov.qcow2"]);
        Assert.Contains("backing file: base.qcow2", human, StringComparison.Ordinal);
        Assert.Contains("virtual size: 10 MiB (10485760 bytes)", human, StringComparison.Ordinal);
    }

    [QemuFact]
    public void Map_json_matches_qemu_img_on_a_chain()
    {
        using var d = new Scratch();
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", d["base.qcow2"], "10M");
        ImgHarness.QemuIo(d["base.qcow2"], "write -P 0x11 0 128k", "write -z 1M 64k", "write -P 3 4M 64k");
        ImgHarness.Qemu("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", d["ov.qcow2"]);
        ImgHarness.QemuIo(d["ov.qcow2"], "write -P 0x22 64k 128k", "write -z 4M 64k");
        Assert.Equal(ImgHarness.Qemu("map", "--output=json", d["ov.qcow2"]), ImgHarness.Ok("map", "--output=json", d["ov.qcow2"]));
        Assert.Equal(ImgHarness.Qemu("map", "--output=json", d["base.qcow2"]), ImgHarness.Ok("map", "--output=json", d["base.qcow2"]));
    }

    [QemuFact]
    public void Check_exit_codes_and_repair_follow_qemu_img()
    {
        using var d = new Scratch();
        var p = d["a.qcow2"];
        ImgHarness.Ok("create", "-q", "-f", "qcow2", p, "10M");
        ImgHarness.QemuIo(p, "write -P 1 0 64k");
        Assert.Equal(0, ImgHarness.Run("check", p).Code);
        // Leak: bump the refcount of cluster 7 (unused) in the first refcount block at 0x20000.
        using (var fs = new FileStream(p, FileMode.Open))
        {
            fs.Position = 0x20000 + 7 * 2;
            fs.Write([0, 1]);
            if (fs.Length < 8 * 65536) fs.SetLength(8 * 65536);
        }
        Assert.Equal(3, ImgHarness.Tool(ImgHarness.QemuImg!, "check", p).Code);
        var (code, o, _) = ImgHarness.Run("check", "--output=json", p);
        Assert.Equal(3, code);
        Assert.Equal(1, ParseJson(o).GetProperty("leaks").GetInt32());
        Assert.Equal(0, ImgHarness.Run("check", "-r", "leaks", p).Code);
        ImgHarness.Qemu("check", p);
        // Corruption: refcount of the data cluster to zero.
        var dataCluster = ParseJson(ImgHarness.Qemu("map", "--output=json", p))[0].GetProperty("offset").GetInt64() / 65536;
        using (var fs = new FileStream(p, FileMode.Open))
        {
            fs.Position = 0x20000 + dataCluster * 2;
            fs.Write([0, 0]);
        }
        Assert.Equal(2, ImgHarness.Run("check", p).Code);
        Assert.Equal(2, ImgHarness.Tool(ImgHarness.QemuImg!, "check", p).Code);
        Assert.Equal(0, ImgHarness.Run("check", "-r", "all", p).Code);
        ImgHarness.Qemu("check", p);
        ImgHarness.QemuIo(p, "read -P 1 0 64k");
        Assert.Equal(63, ImgHarness.Run("check", "-f", "raw", p).Code);
    }

    [QemuFact]
    public void Convert_compressed_and_back_preserves_contents()
    {
        using var d = new Scratch();
        var raw = new byte[20 << 20];
        new Random(5).NextBytes(raw.AsSpan(8 << 20, 3 << 20));
        raw.AsSpan(0, 1 << 20).Fill(0x5a);
        raw.AsSpan(5 << 20, 300 << 10).Fill(0x33);
        File.WriteAllBytes(d["src.raw"], raw);
        ImgHarness.Qemu("convert", "-f", "raw", "-O", "qcow2", d["src.raw"], d["src.qcow2"]);
        ImgHarness.Ok("convert", "-f", "qcow2", "-O", "qcow2", "-c", d["src.qcow2"], d["c.qcow2"]);
        ImgHarness.Qemu("check", d["c.qcow2"]);
        ImgHarness.Qemu("compare", d["src.qcow2"], d["c.qcow2"]);
        var chk = ParseJson(ImgHarness.Qemu("check", "--output=json", d["c.qcow2"]));
        Assert.True(chk.GetProperty("compressed-clusters").GetInt32() > 0);
        ImgHarness.Ok("convert", "-p", "-O", "raw", d["c.qcow2"], d["out.raw"]);
        ImgHarness.Qemu("compare", "-f", "qcow2", "-F", "raw", d["src.qcow2"], d["out.raw"]);
        ImgHarness.Ok("create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", d["z.qcow2"], "1M");
        ImgHarness.Ok("convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", d["src.qcow2"], d["z.qcow2"]);
        ImgHarness.Qemu("check", d["z.qcow2"]);
        ImgHarness.Qemu("compare", d["src.qcow2"], d["z.qcow2"]);
    }

    [QemuFact]
    public void Resize_snapshot_commit_rebase_compare_work_with_qemu()
    {
        using var d = new Scratch();
        var b = d["b.qcow2"];
        var o = d["o.qcow2"];
        ImgHarness.Ok("create", "-q", "-f", "qcow2", b, "4M");
        ImgHarness.QemuIo(b, "write -P 1 0 1M");
        ImgHarness.Ok("resize", b, "+60M");
        Assert.Contains("67108864", ImgHarness.Qemu("info", "--output=json", b), StringComparison.Ordinal);
        ImgHarness.QemuIo(b, "write -P 2 60M 1M", "read -P 1 0 1M");
        ImgHarness.Ok("snapshot", "-c", "first", b);
        ImgHarness.QemuIo(b, "write -P 3 0 1M");
        Assert.Contains("first", ImgHarness.Qemu("snapshot", "-l", b), StringComparison.Ordinal);
        ImgHarness.Qemu("check", b);
        ImgHarness.Ok("snapshot", "-a", "first", b);
        ImgHarness.QemuIo(b, "read -P 1 0 1M", "read -P 2 60M 1M");
        ImgHarness.Ok("snapshot", "-d", "first", b);
        ImgHarness.Qemu("check", b);
        Assert.DoesNotContain("first", ImgHarness.Ok("snapshot", "-l", b), StringComparison.Ordinal);

        ImgHarness.Ok("create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", o);
        ImgHarness.QemuIo(o, "write -P 9 512k 1M");
        ImgHarness.Ok("commit", o);
        ImgHarness.QemuIo(b, "read -P 1 0 512k", "read -P 9 512k 1M");
        ImgHarness.Qemu("check", b);
        ImgHarness.Qemu("check", o);

        ImgHarness.QemuIo(o, "write -P 7 0 64k");
        ImgHarness.Ok("rebase", "-b", "", o);
        ImgHarness.QemuIo(o, "read -P 7 0 64k", "read -P 9 512k 1M", "read -P 2 60M 1M");
        Assert.Equal(0, ImgHarness.Run("compare", o, o).Code);
        Assert.Equal(1, ImgHarness.Run("compare", o, b).Code);
        Assert.Equal(2, ImgHarness.Run("compare", o, d["missing"]).Code);
        ImgHarness.Ok("rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", o);
        Assert.Contains("b.qcow2", ImgHarness.Qemu("info", o), StringComparison.Ordinal);
        var (code, _, _) = ImgHarness.Run("resize", b, "1M");
        Assert.NotEqual(0, code);
        ImgHarness.Ok("resize", "--shrink", b, "--", "-32M");
        ImgHarness.Qemu("check", b);
        Assert.Contains("33554432", ImgHarness.Qemu("info", "--output=json", b), StringComparison.Ordinal);
    }

    [Fact]
    public void Errors_are_one_line_on_stderr_with_no_stack_trace()
    {
        using var d = new Scratch();
        var (code, o, e) = ImgHarness.Run("info", d["nope.qcow2"]);
        Assert.NotEqual(0, code);
        Assert.Single(e.Trim().Split('\n'));
        Assert.DoesNotContain(" at ", e, StringComparison.Ordinal);
        File.WriteAllBytes(d["bad.qcow2"], [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]);
        (code, _, e) = ImgHarness.Run("info", d["bad.qcow2"]);
        Assert.NotEqual(0, code);
        Assert.Single(e.Trim().Split('\n'));
        (code, _, e) = ImgHarness.Run("create", "-f", "qcow2", "-o", "cluster_size=3000", d["x.qcow2"], "1M");
        Assert.NotEqual(0, code);
        Assert.Contains("cluster size", e, StringComparison.Ordinal);
    }
}

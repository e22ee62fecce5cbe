using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Tests;

public sealed class OptionListTests
{
    [Fact]
    public void The_head_is_taken_whole_and_items_split_at_single_commas()
    {
        var list = OptionList.WithHead("disk.qcow2,format=qcow2,readonly");
        Assert.Equal("disk.qcow2", list.Head);
        Assert.Equal([new OptionItem("format", "qcow2", true, "format=qcow2"), new OptionItem("readonly", "", false, "readonly")], list.Items);
    }

    [Fact]
    public void A_doubled_comma_is_a_literal_comma_as_in_qemu()
    {
        var list = OptionList.WithHead("a,,b.img,format=raw");
        Assert.Equal("a,b.img", list.Head);
        Assert.Equal("format", Assert.Single(list.Items).Key);
    }

    [Fact]
    public void Empty_items_are_kept_for_the_caller_to_refuse()
    {
        Assert.Equal(["x", ""], OptionList.SplitItems("x,"));
        Assert.Equal(["x,", ""], OptionList.SplitItems("x,,,"));
        Assert.Equal(["", "a"], OptionList.SplitItems(",a"));
        Assert.Equal("", OptionList.WithHead("").Head);
        Assert.Empty(OptionList.WithHead("").Items);
    }

    [Theory]
    [InlineData("1048576", 1048576L)]
    [InlineData("64k", 64L << 10)]
    [InlineData("1.5G", 3L << 29)]
    [InlineData("512B", 512L)]
    [InlineData("2MB", 2L << 20)]
    [InlineData("0", 0L)]
    public void Image_sizes_default_to_bytes(string text, long bytes) => Assert.Equal(bytes, SizeParser.ParseBytes(text));

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("12X")]
    [InlineData("k")]
    [InlineData("9E")]
    public void Bad_image_sizes_are_format_errors(string text) => Assert.Throws<FormatException>(() => SizeParser.ParseBytes(text));
}

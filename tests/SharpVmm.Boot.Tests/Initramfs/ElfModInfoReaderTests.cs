using System.Buffers.Binary;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.Boot.Tests.Initramfs;

public class ElfModInfoReaderTests
{
    private static readonly byte[] Good = SyntheticElf.Module(
        "alias=acpi*:LNRO0005:*", "depends=virtio,virtio_ring", "retpoline=Y", "intree=Y", "name=virtio_mmio",
        "vermagic=6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ", "alias=of:N*T*Cvirtio,mmio");

    [Fact]
    public void Reads_name_depends_and_repeated_keys()
    {
        var info = ElfModInfoReader.Parse(Good);
        Assert.Equal("virtio_mmio", info.Name);
        Assert.Equal(["virtio", "virtio_ring"], info.Depends);
        Assert.Equal(["acpi*:LNRO0005:*", "of:N*T*Cvirtio,mmio"], info.GetAll("alias"));
        Assert.Equal("6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ", info.Get("vermagic"));
        Assert.Null(info.Get("parm"));
    }

    [Fact]
    public void Empty_depends_means_no_dependencies()
    {
        var info = ElfModInfoReader.Parse(SyntheticElf.Module("depends=", "name=virtio_ring"));
        Assert.Empty(info.Depends);
        Assert.Empty(ElfModInfoReader.Parse(SyntheticElf.Module("name=x")).Depends);
    }

    [Fact]
    public void Values_may_contain_equals_signs()
    {
        var info = ElfModInfoReader.Parse(SyntheticElf.Module("parm=mode:a=b (int)"));
        Assert.Equal("mode:a=b (int)", info.Get("parm"));
    }

    [Fact]
    public void Truncated_header_is_reported_with_the_file_name()
    {
        var ex = Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(Good[..40], "t.ko"));
        Assert.Contains("'t.ko' is malformed", ex.Message, StringComparison.Ordinal);
        Assert.Contains("truncated ELF header", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_section_table_is_reported()
    {
        var ex = Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(Good[..^10], "t.ko"));
        Assert.Contains("does not fit", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Not_an_elf_file()
    {
        var ex = Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse("\x28\xB5\x2F\xFD compressed"u8.ToArray(), "m.ko.zst"));
        Assert.Contains("not an ELF file", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse([]));
    }

    [Fact]
    public void Wrong_class_or_byte_order()
    {
        var elf32 = (byte[])Good.Clone();
        elf32[4] = 1;
        Assert.Contains("ELF64", Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(elf32)).Message, StringComparison.Ordinal);
        var bigEndian = (byte[])Good.Clone();
        bigEndian[5] = 2;
        Assert.Contains("little-endian", Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(bigEndian)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Section_table_offset_beyond_the_file()
    {
        var elf = (byte[])Good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(SyntheticElf.ShOffField), ulong.MaxValue - 8);
        Assert.Contains("beyond the end", Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(elf)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Too_many_sections_for_the_file()
    {
        var elf = (byte[])Good.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(SyntheticElf.ShNumField), 0xFFF0);
        Assert.Contains("does not fit", Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(elf)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Section_name_table_index_out_of_range()
    {
        var elf = (byte[])Good.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(SyntheticElf.ShStrNdxField), 40);
        Assert.Contains("out of range", Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(elf)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Modinfo_section_data_beyond_the_file()
    {
        var elf = (byte[])Good.Clone();
        int modinfoHeader = SyntheticElf.SectionHeader(elf, 2); // null, .text, .modinfo
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(modinfoHeader + 0x20), 0x7FFF_FFFF_FFFF_FFFF);
        var ex = Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(elf, "big.ko"));
        Assert.Contains(".modinfo", ex.Message, StringComparison.Ordinal);
        Assert.Contains("truncated or corrupt", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Section_name_offset_outside_the_name_table()
    {
        var elf = (byte[])Good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(SyntheticElf.SectionHeader(elf, 1)), 0xFFFF);
        Assert.Contains("name offset", Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(elf)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_modinfo_section()
    {
        var elf = SyntheticElf.Build([(".text", [0xC3])]);
        Assert.Contains("no .modinfo", Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(elf)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Modinfo_string_without_a_key()
    {
        var elf = SyntheticElf.Module("name=ok", "garbage");
        Assert.Contains("not key=value", Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(elf)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_truncation_of_a_module_is_an_InitramfsException()
    {
        // The section header table sits at the end of the file, so any cut damages it.
        for (int len = 0; len < Good.Length; len++)
        {
            byte[] cut = Good[..len];
            Assert.Throws<InitramfsException>(() => ElfModInfoReader.Parse(cut));
        }
    }
}

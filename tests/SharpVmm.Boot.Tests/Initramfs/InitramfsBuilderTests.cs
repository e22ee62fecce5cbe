using System.IO.Compression;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.Boot.Tests.Initramfs;

public sealed class InitramfsBuilderTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("sharpvmm-initramfs-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static InitramfsBuilder Sample()
    {
        var b = new InitramfsBuilder();
        b.AddDevice("/dev/console", CpioEntryType.CharacterDevice, 5, 1);
        b.AddDevice("/dev/null", CpioEntryType.CharacterDevice, 1, 3, (UnixFileMode)0x1B6);
        b.AddFile("/init", "#!/bin/sh\necho hi\n", InitramfsBuilder.ExecutableMode);
        b.AddFile("/usr/share/data.bin", Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)).ToArray());
        b.AddSymlink("/bin/sh", "busybox");
        b.AddDirectory("/tmp", (UnixFileMode)0x3FF);
        return b;
    }

    private static byte[] Cpio(InitramfsBuilder b)
    {
        var ms = new MemoryStream();
        b.Build(ms, InitramfsCompression.None);
        return ms.ToArray();
    }

    [Fact]
    public void Parents_are_created_before_children_in_insertion_order()
    {
        var entries = CpioTestReader.Read(Cpio(Sample()));
        Assert.Equal(
            ["dev", "dev/console", "dev/null", "init", "usr", "usr/share", "usr/share/data.bin", "bin", "bin/sh", "tmp"],
            entries.Select(e => e.Name));
        Assert.Equal(0x41EDu, entries.Single(e => e.Name == "usr/share").Mode);
        Assert.Equal(0x43FFu, entries.Single(e => e.Name == "tmp").Mode);
        Assert.Equal(0x81EDu, entries.Single(e => e.Name == "init").Mode);
        Assert.Equal(0x21B6u, entries.Single(e => e.Name == "dev/null").Mode);
        Assert.Equal("#!/bin/sh\necho hi\n", entries.Single(e => e.Name == "init").Text);
    }

    [Fact]
    public void Same_inputs_give_identical_bytes_compressed_or_not()
    {
        Assert.Equal(Cpio(Sample()), Cpio(Sample()));
        var a = new MemoryStream();
        var b = new MemoryStream();
        Sample().Build(a);
        Sample().Build(b);
        Assert.Equal(a.ToArray(), b.ToArray());
    }

    [Fact]
    public void Gzip_output_inflates_to_the_cpio_archive()
    {
        var gz = new MemoryStream();
        Sample().Build(gz);
        Assert.Equal([0x1F, 0x8B], gz.ToArray().AsSpan(0, 2).ToArray());
        gz.Position = 0;
        var inflated = new MemoryStream();
        using (var z = new GZipStream(gz, CompressionMode.Decompress))
            z.CopyTo(inflated);
        Assert.Equal(Cpio(Sample()), inflated.ToArray());
    }

    [ToolFact("gzip", "gzip")]
    public void Gzip_output_passes_gzip_t()
    {
        string path = Path.Combine(_temp, "initrd.gz");
        using (var f = File.Create(path))
            Sample().Build(f);
        var (code, output) = TestEnvironment.Run("gzip", ["-t", path]);
        Assert.True(code == 0, output);
    }

    [ToolFact("cpio", "cpio")]
    public void System_cpio_lists_and_extracts_the_archive()
    {
        string archive = Path.Combine(_temp, "a.cpio");
        string hostFile = Path.Combine(_temp, "host.txt");
        File.WriteAllText(hostFile, "from the host\n");
        var b = Sample();
        b.AddHostFile("etc/host.txt", hostFile);
        using (var f = File.Create(archive))
            b.Build(f, InitramfsCompression.None);

        var (code, listing) = TestEnvironment.Run("cpio", ["-it", "--quiet", "-F", archive]);
        Assert.True(code == 0, listing);
        Assert.Equal(
            ["dev", "dev/console", "dev/null", "init", "usr", "usr/share", "usr/share/data.bin", "bin", "bin/sh", "tmp", "etc", "etc/host.txt"],
            listing.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        string outDir = Directory.CreateDirectory(Path.Combine(_temp, "x")).FullName;
        (code, var output) = TestEnvironment.Run("cpio", ["-id", "--quiet", "--no-absolute-filenames", "-F", archive], outDir);
        Assert.True(code == 0, output);
        Assert.Equal("#!/bin/sh\necho hi\n", File.ReadAllText(Path.Combine(outDir, "init")));
        Assert.Equal("from the host\n", File.ReadAllText(Path.Combine(outDir, "etc/host.txt")));
        Assert.Equal("busybox", new FileInfo(Path.Combine(outDir, "bin/sh")).LinkTarget);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)), File.ReadAllBytes(Path.Combine(outDir, "usr/share/data.bin")));
        if (!OperatingSystem.IsWindows())
            Assert.Equal((UnixFileMode)0x1ED, File.GetUnixFileMode(Path.Combine(outDir, "init")));
    }

    [Fact]
    public void Host_files_are_streamed_with_their_content_and_chosen_mode()
    {
        string hostFile = Path.Combine(_temp, "blob");
        var content = Enumerable.Range(0, 200_000).Select(i => (byte)(i % 251)).ToArray();
        File.WriteAllBytes(hostFile, content);
        var b = new InitramfsBuilder().AddHostFile("/lib/blob", hostFile, (UnixFileMode)0x124);
        var e = CpioTestReader.Read(Cpio(b)).Single(x => x.Name == "lib/blob");
        Assert.Equal(content, e.Data);
        Assert.Equal(0x8124u, e.Mode);
    }

    [Fact]
    public void Bad_paths_and_conflicts_are_clear_errors()
    {
        var b = new InitramfsBuilder();
        b.AddFile("/etc/motd", "hello");
        Assert.Contains("added twice", Assert.Throws<InitramfsException>(() => b.AddFile("etc/motd", "again")).Message, StringComparison.Ordinal);
        Assert.Contains("not a directory", Assert.Throws<InitramfsException>(() => b.AddFile("etc/motd/x", "x")).Message, StringComparison.Ordinal);
        Assert.Throws<InitramfsException>(() => b.AddDirectory("etc/motd"));
        Assert.Throws<InitramfsException>(() => b.AddFile("../escape", "x"));
        Assert.Throws<InitramfsException>(() => b.AddFile("a//b", "x"));
        Assert.Throws<InitramfsException>(() => b.AddFile("/", "x"));
        Assert.Throws<InitramfsException>(() => b.AddHostFile("x", Path.Combine(_temp, "does-not-exist")));
        Assert.Throws<InitramfsException>(() => b.AddDevice("dev/big", CpioEntryType.CharacterDevice, 4096, 0));
        Assert.Throws<ArgumentException>(() => b.AddDevice("dev/x", CpioEntryType.RegularFile, 1, 1));
        b.AddDirectory("etc"); // an existing directory may be named again
        Assert.True(b.Contains("/etc/motd"));
    }

    [Fact]
    public void A_host_file_that_disappears_before_build_is_reported()
    {
        string hostFile = Path.Combine(_temp, "gone");
        File.WriteAllText(hostFile, "x");
        var b = new InitramfsBuilder().AddHostFile("gone", hostFile);
        File.Delete(hostFile);
        var ex = Assert.Throws<InitramfsException>(() => Cpio(b));
        Assert.Contains(hostFile, ex.Message, StringComparison.Ordinal);
    }
}

using System.CommandLine;
using System.IO.Compression;
using System.Text;
using SharpVmm.Cli.Guest;

namespace SharpVmm.Cli.Tests.Guest;

public sealed class GuestCommandTests : IDisposable
{
    private readonly string _guest = Directory.CreateTempSubdirectory("sharpvmm-guestcmd-").FullName;

    public GuestCommandTests()
    {
        // A minimal guest dir: the requested module is built in, so no .ko files are needed.
        File.WriteAllText(Path.Combine(_guest, "busybox"), "#!/bin/false\n");
        File.WriteAllText(Path.Combine(_guest, "kernel-version"), "6.1.0-test\n");
        Directory.CreateDirectory(Path.Combine(_guest, "modules", "kernel"));
        File.WriteAllText(Path.Combine(_guest, "modules", "modules.builtin"), "kernel/fs/ext4/ext4.ko\n");
    }

    public void Dispose() => Directory.Delete(_guest, recursive: true);

    private static (int Code, string Out, string Err) Invoke(params string[] args)
    {
        var root = new RootCommand("sharpvmm");
        root.Subcommands.Add(GuestCommand.Create());
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = root.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Builds_initrd_gz_in_the_guest_dir_by_default()
    {
        var (code, output, error) = Invoke("guest", "build-initramfs", "--guest-dir", _guest, "--modules", "ext4", "--command", "echo hi there");
        Assert.True(code == 0, error);
        string initrd = Path.Combine(_guest, "initrd.gz");
        Assert.Contains(initrd, output, StringComparison.Ordinal);

        var cpio = new MemoryStream();
        using (var gz = new GZipStream(File.OpenRead(initrd), CompressionMode.Decompress))
            gz.CopyTo(cpio);
        string text = Encoding.ASCII.GetString(cpio.ToArray());
        Assert.StartsWith("070701", text, StringComparison.Ordinal);
        Assert.Contains("init\0", text, StringComparison.Ordinal);
        Assert.Contains("lib/modules/6.1.0-test/modules.dep\0", text, StringComparison.Ordinal);
        Assert.Contains("etc/sharpvmm/cmd\0", text, StringComparison.Ordinal);
        Assert.Contains("echo hi there", text, StringComparison.Ordinal);
        Assert.Contains("TRAILER!!!\0", text, StringComparison.Ordinal);
        Assert.False(File.Exists(initrd + ".tmp"));
    }

    [Fact]
    public void Uncompressed_output_and_custom_init()
    {
        string init = Path.Combine(_guest, "my-init");
        File.WriteAllText(init, "#!/bin/sh\necho custom-init\n");
        string output = Path.Combine(_guest, "out", "initrd.cpio");
        var (code, _, error) = Invoke("guest", "build-initramfs", "--guest-dir", _guest, "--modules", "ext4",
            "--init", init, "--compression", "none", "-o", output);
        Assert.True(code == 0, error);
        string text = Encoding.ASCII.GetString(File.ReadAllBytes(output));
        Assert.StartsWith("070701", text, StringComparison.Ordinal);
        Assert.Contains("echo custom-init", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_guest_dir_fails_with_advice_and_writes_nothing()
    {
        string missing = Path.Combine(_guest, "nothing-here");
        var (code, _, error) = Invoke("guest", "build-initramfs", "--guest-dir", missing);
        Assert.Equal(1, code);
        Assert.Contains("guest/fetch.sh", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(missing));
    }

    [Fact]
    public void Unknown_module_fails_with_its_name()
    {
        var (code, _, error) = Invoke("guest", "build-initramfs", "--guest-dir", _guest, "--modules", "no_such_driver");
        Assert.Equal(1, code);
        Assert.Contains("'no_such_driver'", error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_guest, "initrd.gz")));
    }
}

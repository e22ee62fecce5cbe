using System.CommandLine;
using SharpVmm.Boot.Initramfs;

namespace SharpVmm.Cli.Guest;

/// <summary>`sharpvmm guest ...`: building the test/demo guest fetched by guest/fetch.sh.</summary>
public static class GuestCommand
{
    public static Command Create()
    {
        var guest = new Command("guest", "The test/demo guest (Debian cloud kernel + busybox; fetch it with guest/fetch.sh)");
        guest.Subcommands.Add(CreateBuildInitramfs());
        return guest;
    }

    private static Command CreateBuildInitramfs()
    {
        var guestDir = new Option<string>("--guest-dir")
        {
            Description = "Guest dir filled by guest/fetch.sh (default: $SHARPVMM_GUEST_DIR or ~/.cache/sharpvmm/guest)",
        };
        var modules = new Option<string>("--modules")
        {
            Description = "Comma-separated kernel modules to load at boot; dependencies are added (default: the virtio drivers)",
        };
        var init = new Option<string>("--init")
        {
            Description = "Script to use as /init instead of the built-in one (guest/init)",
        };
        var command = new Option<string>("--command")
        {
            Description = "Shell command /init runs instead of a shell (stored as /etc/sharpvmm/cmd); the kernel's sharpvmm.cmd= overrides it",
        };
        var compression = new Option<InitramfsCompression>("--compression")
        {
            Description = "gzip (default) or none (plain cpio: bigger, but nothing to inflate in the guest)",
            DefaultValueFactory = _ => InitramfsCompression.Gzip,
        };
        var output = new Option<string>("--output", "-o")
        {
            Description = "Output file (default: <guest-dir>/initrd.gz, or initrd.cpio with --compression none)",
        };

        var cmd = new Command("build-initramfs", "Build a gzip newc initramfs with busybox, /init and the kernel modules");
        cmd.Options.Add(guestDir);
        cmd.Options.Add(modules);
        cmd.Options.Add(init);
        cmd.Options.Add(command);
        cmd.Options.Add(compression);
        cmd.Options.Add(output);
        cmd.SetAction(parseResult =>
        {
            var stdout = parseResult.InvocationConfiguration.Output;
            var stderr = parseResult.InvocationConfiguration.Error;
            string dir = parseResult.GetValue(guestDir) ?? GuestInitramfs.DefaultGuestDir;
            var encoding = parseResult.GetValue(compression);
            string outPath = parseResult.GetValue(output)
                ?? Path.Combine(dir, encoding == InitramfsCompression.None ? "initrd.cpio" : "initrd.gz");
            string? moduleList = parseResult.GetValue(modules);
            string? initPath = parseResult.GetValue(init);
            try
            {
                IEnumerable<string>? names = moduleList?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                string? initText = null;
                if (initPath is not null)
                {
                    if (!File.Exists(initPath))
                        throw new InitramfsException($"init script '{initPath}' does not exist");
                    initText = File.ReadAllText(initPath);
                }
                var builder = GuestInitramfs.Create(dir, names, initText, parseResult.GetValue(command));

                // Write beside the target and rename, so a failed build never leaves a half-written initrd behind.
                string full = Path.GetFullPath(outPath);
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                string temp = full + ".tmp";
                using (var file = File.Create(temp))
                    builder.Build(file, encoding);
                File.Move(temp, full, overwrite: true);
                stdout.WriteLine($"{full}: {new FileInfo(full).Length} bytes, {builder.Paths.Count()} entries");
                return 0;
            }
            catch (Exception ex) when (ex is InitramfsException or IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"sharpvmm guest build-initramfs: {ex.Message}");
                return 1;
            }
        });
        return cmd;
    }
}

using System.CommandLine;
using System.Globalization;
using SharpVmm.Boot.Flat;
using SharpVmm.Boot.Linux;
using SharpVmm.Core;

namespace SharpVmm.Cli.Demo;

/// <summary><c>sharpvmm guest hello</c>: writes the demo flat guest for one entry mode.</summary>
public static class HelloCommand
{
    public static Command Create()
    {
        var mode = new Option<string>("--mode") { Description = "Entry mode the binary is written for", DefaultValueFactory = _ => "real", HelpName = "real|protected|long" };
        mode.AcceptOnlyFromAmong("real", "protected", "long");
        var address = new Option<string>("--address") { Description = "Load address the binary is assembled for", DefaultValueFactory = _ => "0x1000", HelpName = "ADDR" };
        var output = new Option<string>("--output", "-o") { Description = "File to write", Required = true, HelpName = "FILE" };
        var cmd = new Command("hello", "Write a tiny flat guest that greets on COM1 and exits through the debug-exit port (exit 33, 65 or 97 by mode)")
        {
            mode, address, output,
        };
        cmd.SetAction(pr =>
        {
            var m = Enum.Parse<EntryMode>(pr.GetValue(mode)!, ignoreCase: true);
            string a = pr.GetValue(address)!;
            bool ok = a.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? ulong.TryParse(a.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong addr)
                : ulong.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out addr);
            if (!ok) throw new ConfigurationException($"--address '{a}' is not a number");
            File.WriteAllBytes(pr.GetValue(output)!, HelloGuest.Assemble(m, addr));
            return 0;
        });
        return cmd;
    }
}

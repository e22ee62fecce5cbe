using System.CommandLine;
using SharpVmm.Boot.Flat;
using SharpVmm.Cli.Demo;
using SharpVmm.Cli.Run;
using SharpVmm.Cli.Tests.Qmp;

namespace SharpVmm.Cli.Tests.Run;

/// <summary><c>sharpvmm run --config vm.json</c>: the file read as the run command's own options.</summary>
public sealed class ConfigFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string json, string name = "vm.json")
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, json);
        return path;
    }

    private static (ParseResult Parsed, ConfigFileOption Config) Parse(params string[] args)
    {
        var root = Program.BuildRoot();
        var run = root.Subcommands.Single(c => c.Name == "run");
        return (root.Parse(["run", .. args]), run.Options.OfType<ConfigFileOption>().Single());
    }

    /// <summary>The merged parse, asserting the file was accepted.</summary>
    private static ParseResult Merged(params string[] args)
    {
        var (parsed, config) = Parse(args);
        Assert.True(parsed.Errors.Count == 0, string.Join("; ", parsed.Errors.Select(e => e.Message)));
        return config.Apply(parsed);
    }

    private static string Error(params string[] args)
    {
        var (parsed, _) = Parse(args);
        Assert.True(parsed.Errors.Count > 0, "the config file was accepted");
        return parsed.Errors[0].Message;
    }

    [Fact]
    public void Every_kind_of_option_reads_as_on_the_command_line_with_paths_relative_to_the_file()
    {
        string sub = Directory.CreateDirectory(Path.Combine(_dir, "conf")).FullName;
        string file = Write("""
            // comments and trailing commas are allowed
            {
              "accel": "emu",
              "memory": "512M",
              "cpus": 2,
              "kernel": "vmlinuz",
              "initrd": "/abs/initrd.gz",
              "append": "console=ttyS0 quiet",
              "disk": ["a.qcow2,format=qcow2", "../b.raw,format=raw,readonly=on", "/abs/c.img"],
              "rng": true,
              "qmp": "unix:q.sock",
              "serial": "file:serial.log",
            }
            """, "conf/vm.json");
        var m = Merged("--config", file);
        Assert.Equal("emu", m.GetValue<string>("--accel"));
        Assert.Equal("512M", m.GetValue<string>("--memory"));
        Assert.Equal(2, m.GetValue<int>("--cpus"));
        Assert.Equal(Path.Combine(sub, "vmlinuz"), m.GetValue<string?>("--kernel"));
        Assert.Equal("/abs/initrd.gz", m.GetValue<string?>("--initrd"));
        Assert.Equal("console=ttyS0 quiet", m.GetValue<string?>("--append"));
        Assert.Equal(
            [Path.Combine(sub, "a.qcow2") + ",format=qcow2", Path.Combine(_dir, "b.raw") + ",format=raw,readonly=on", "/abs/c.img"],
            m.GetValue<string[]>("--disk")!);
        Assert.True(m.GetValue<bool>("--rng"));
        Assert.Equal("unix:" + Path.Combine(sub, "q.sock"), m.GetValue<string?>("--qmp"));
        Assert.Equal("file:" + Path.Combine(sub, "serial.log"), m.GetValue<string>("--serial"));
        // Not in the file: the option's default, as without --config.
        Assert.Equal("real", m.GetValue<string>("--entry-mode"));
    }

    [Fact]
    public void Command_line_options_beside_config_win_and_a_list_given_there_replaces_the_files()
    {
        string file = Write("""{"memory": 512, "cpus": 2, "disk": ["a.img", "b.img"], "rng": true, "serial": "stdio", "flat": "g.bin@0x1000"}""");
        var m = Merged("--cpus", "4", "--config", file, "--disk", "/x.img", "--rng", "false", "-m", "1G");
        Assert.Equal(4, m.GetValue<int>("--cpus"));
        Assert.Equal("1G", m.GetValue<string>("--memory"));
        Assert.Equal(["/x.img"], m.GetValue<string[]>("--disk")!);
        Assert.False(m.GetValue<bool>("--rng"));
        Assert.Equal("stdio", m.GetValue<string>("--serial")); // a keyword, not a path
        Assert.Equal(Path.Combine(_dir, "g.bin") + "@0x1000", m.GetValue<string?>("--flat"));

        // A bare number is read as the option's text; false and null leave a switch and an option unset.
        var n = Merged("--config", Write("""{"memory": 512, "rng": false, "kernel": null, "no-reboot": true}""", "n.json"));
        Assert.True(n.GetValue<bool>("--no-reboot"));
        Assert.Equal("512", n.GetValue<string>("--memory"));
        Assert.False(n.GetValue<bool>("--rng"));
        Assert.Null(n.GetValue<string?>("--kernel"));

        // Without --config the parse is returned as it is.
        var (plain, config) = Parse("--cpus", "3");
        Assert.Same(plain, config.Apply(plain));
    }

    [Fact]
    public void Values_that_look_like_options_or_response_files_stay_values()
    {
        var m = Merged("--config", Write("""{"append": "--cpus 9", "kernel": "@k", "cpus": 1}"""));
        Assert.Equal("--cpus 9", m.GetValue<string?>("--append"));
        Assert.Equal(1, m.GetValue<int>("--cpus"));
        Assert.Equal(Path.Combine(_dir, "@k"), m.GetValue<string?>("--kernel"));
    }

    [Fact]
    public void Each_problem_is_one_message_naming_the_key_and_what_it_takes()
    {
        string unknown = Error("--config", Write("""{"cpus": 2, "memroy": "1G"}"""));
        Assert.StartsWith($"{Path.Combine(_dir, "vm.json")}: unknown key \"memroy\"; the keys are the options of 'run' without their '--': accel, memory, cpus, ", unknown);
        Assert.Contains(", disk, ", unknown);
        Assert.DoesNotContain("config", unknown.Split("--': ")[1]);
        Assert.EndsWith("\"cpus\" must be an integer, not the string \"two\"", Error("--config", Write("""{"cpus": "two"}""")));
        Assert.EndsWith("\"cpus\" must be an integer, not the number 1.5", Error("--config", Write("""{"cpus": 1.5}""")));
        Assert.EndsWith("\"rng\" must be true or false, not the string \"yes\"", Error("--config", Write("""{"rng": "yes"}""")));
        Assert.EndsWith("\"disk[1]\" must be a string or an array of them, not an object", Error("--config", Write("""{"disk": ["a", {}]}""")));
        Assert.EndsWith("\"kernel\" must be a string, not an array", Error("--config", Write("""{"kernel": ["a"]}""")));
        Assert.EndsWith("key \"cpus\" appears twice", Error("--config", Write("""{"cpus": 1, "cpus": 2}""")));
        // The option's own checks, blamed on the key.
        string accel = Error("--config", Write("""{"accel": "fast"}"""));
        Assert.StartsWith(Path.Combine(_dir, "vm.json") + ": \"accel\": ", accel);
        Assert.Contains("'fast'", accel);
        Assert.Contains("kvm", accel);
        Assert.Contains("\"cpus\": ", Error("--config", Write("""{"cpus": 99999999999}""")));
        // Not JSON: where, by line and column.
        string json = Error("--config", Write("{\n  \"cpus\": 2\n  \"rng\": true\n}"));
        Assert.StartsWith(Path.Combine(_dir, "vm.json") + ":3:3: not valid JSON: ", json);
        Assert.DoesNotContain("LineNumber", json);
        Assert.EndsWith("must hold one JSON object of options, e.g. {\"memory\": \"512M\", \"cpus\": 2}, not an array", Error("--config", Write("[1]")));
        Assert.StartsWith($"cannot read config file '{Path.Combine(_dir, "missing.json")}'", Error("--config", Path.Combine(_dir, "missing.json")));
        Assert.StartsWith($"cannot read config file '{_dir}'", Error("--config", _dir));
        Assert.Contains("\"config\"", Error("--config", Write("""{"config": "other.json"}""")));
    }

    [Fact]
    public void A_bad_config_file_exits_2_before_anything_runs()
    {
        Assert.Equal(2, Program.Main(["run", "--config", Write("""{"cpus": "two"}""")]));
        Assert.Equal(2, Program.Main(["run", "--config", Path.Combine(_dir, "missing.json")]));
    }

    [Fact]
    public void Help_explains_the_file_and_where_relative_paths_point()
    {
        var run = Program.BuildRoot().Subcommands.Single(c => c.Name == "run");
        var option = run.Options.OfType<ConfigFileOption>().Single();
        Assert.Equal("--config", option.Name);
        Assert.Contains("relative to the file's directory", option.Description);
        Assert.Contains("command line win", option.Description);
    }

    [Fact]
    public void Path_rules_come_from_each_options_help_name()
    {
        var run = Program.BuildRoot().Subcommands.Single(c => c.Name == "run");
        Option O(string name) => run.Options.Single(o => o.Name == name);
        Assert.Equal("/d/k", ConfigFilePaths.Resolve(O("--kernel"), "k", "/d"));
        Assert.Equal("/d/x@y.bin@0x1000", ConfigFilePaths.Resolve(O("--flat"), "x@y.bin@0x1000", "/d"));
        Assert.Equal("/d/a,format=raw", ConfigFilePaths.Resolve(O("--disk"), "a,format=raw", "/d"));
        Assert.Equal("unix:/d/s", ConfigFilePaths.Resolve(O("--serial"), "unix:s", "/d"));
        Assert.Equal("none", ConfigFilePaths.Resolve(O("--serial"), "none", "/d"));
        Assert.Equal("tcp:127.0.0.1:4444", ConfigFilePaths.Resolve(O("--qmp"), "tcp:127.0.0.1:4444", "/d"));
        Assert.Equal("512M", ConfigFilePaths.Resolve(O("--memory"), "512M", "/d"));
        Assert.Equal("console=ttyS0", ConfigFilePaths.Resolve(O("--append"), "console=ttyS0", "/d"));
    }

    [Fact]
    public void A_whole_vm_runs_from_its_config_file()
    {
        File.WriteAllBytes(Path.Combine(_dir, "hello.bin"), HelloGuest.Assemble(EntryMode.Protected, 0x1000));
        string file = Write("""{"accel": "emu", "memory": "16M", "flat": "hello.bin@0x1000", "entry-mode": "protected", "serial": "file:serial.txt"}""");
        int code = Program.Main(["run", "--config", file]);
        Assert.Equal(HelloGuest.ExpectedExitCode(EntryMode.Protected), code);
        Assert.Equal(HelloGuest.Message(EntryMode.Protected), File.ReadAllText(Path.Combine(_dir, "serial.txt")));
    }
}

using SharpVmm.Cli.Qemu;
using SharpVmm.Core;
using SharpVmm.Machine.Config;

namespace SharpVmm.Cli.Tests.Qemu;

/// <summary>The QEMU personality's argv parser, against the exact argv files libvirt 9.0 produced, and its refusals.</summary>
public sealed class QemuArgParserTests
{
    /// <summary>A fixture's arguments without argv[0] (libvirt's emulator path).</summary>
    private static List<string> Fixture(string name)
        => [.. File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Qemu", "Fixtures", name)).Skip(1).Where(l => l.Length > 0)];

    private static List<string> Without(List<string> args, string option)
    {
        int i = args.IndexOf(option);
        Assert.True(i >= 0, $"{option} is in the fixture");
        var copy = new List<string>(args);
        copy.RemoveAt(i);
        if (i < copy.Count && !copy[i].StartsWith('-')) copy.RemoveAt(i);
        return copy;
    }

    private static string Refusal(IReadOnlyList<string> args)
        => Assert.Throws<QemuArgException>(() => QemuArgParser.Parse(args)).Message;

    private static readonly Func<AcceleratorKind, (bool, string)> NoKvm = k => k == AcceleratorKind.Kvm ? (false, "no /dev/kvm") : (true, "");

    [Fact]
    public void The_microvm_domain_argv_parses_to_what_libvirt_asked_for()
    {
        var q = QemuArgParser.Parse(Fixture("start-argv-microvm.txt"));
        Assert.Equal("sharpvmm-test", q.Name);
        Assert.True(q.Sandbox); // -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny
        Assert.True(q.Paused);
        Assert.Equal("microvm", q.Machine);
        Assert.Equal([AcceleratorKind.Emu], q.Accelerators);
        Assert.Equal("qemu64", q.Cpu);
        Assert.Equal(256UL << 20, q.MemoryBytes);
        Assert.Equal("microvm.ram", q.MemoryBackend);
        Assert.Equal(268435456UL, q.MemoryBackends["microvm.ram"]);
        Assert.Equal(1, q.Cpus);
        Assert.Equal("c8d66af6-f65f-45bd-8958-5ab10560a767", q.Uuid);
        Assert.Equal("/var/lib/libvirt/qemu/domain-1-sharpvmm-test/master-key.aes", q.Secrets["masterKey0"]);
        Assert.Equal(new QemuChardev("charmonitor", "socket", null, 30), q.Chardevs["charmonitor"]);
        Assert.Equal(new QemuMonitor("charmonitor", null), Assert.Single(q.Monitors));
        Assert.Equal(new QemuChardev("charserial0", "pty", null, null, "/dev/fdset/0", true), q.Chardevs["charserial0"]);
        Assert.Equal("charserial0", q.SerialChardev);
        Assert.Equal("serial0", q.SerialDeviceId);
        Assert.Equal([31], q.FdSets[0]);
        Assert.True(q.NoShutdown);
        Assert.False(q.Acpi);
        Assert.True(q.NoDefaults);
        Assert.True(q.MessageTimestamps);
        Assert.Equal("/var/lib/libvirt/boot/vmlinuz", q.Kernel);
        Assert.Equal("/var/lib/libvirt/boot/initrd.gz", q.Initrd);
        Assert.Equal("console=ttyS0 panic=-1", q.Append);
        Assert.Null(q.Incoming);
        Assert.Null(q.Help);
    }

    [Fact]
    public void Sandbox_is_off_unless_asked_as_in_qemu_and_its_keys_are_checked()
    {
        Assert.False(QemuArgParser.Parse([]).Sandbox);
        Assert.False(QemuArgParser.Parse(["-sandbox", "off"]).Sandbox);
        Assert.True(QemuArgParser.Parse(["-sandbox", "on"]).Sandbox);
        Assert.True(QemuArgParser.Parse(["-sandbox", "on,elevateprivileges=children"]).Sandbox);
        Assert.Equal("-sandbox: spawn=maybe is not supported by SharpVmm (supported: allow, deny)", Refusal(["-sandbox", "on,spawn=maybe"]));
        Assert.StartsWith("-sandbox: ", Refusal(["-sandbox", "on,fork=deny"]));
        // Off filters nothing, so QEMU's values are taken whatever they ask.
        Assert.False(QemuArgParser.Parse(["-sandbox", "off,spawn=allow,obsolete=allow"]).Sandbox);
    }

    [Fact]
    public void Libvirts_sandbox_argument_turns_the_filter_on()
    {
        // What libvirt 9.0 passes once query-command-line-options lists "sandbox" (qemuBuildSeccompSandboxCommandLine).
        Assert.True(QemuArgParser.Parse(["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]).Sandbox);
    }

    [Theory]
    [InlineData("obsolete")]
    [InlineData("elevateprivileges")]
    [InlineData("spawn")]
    [InlineData("resourcecontrol")]
    public void Allowing_a_group_the_filter_always_refuses_is_refused_in_one_line(string key)
    {
        string message = Refusal(["-sandbox", $"on,{key}=allow"]);
        Assert.Equal($"-sandbox: {key}=allow cannot be honoured: SharpVmm's filter allows only the calls a VMM needs and never lets these through (use {key}=deny, or -sandbox off)", message);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void The_microvm_domain_maps_onto_a_run_config_once_acpi_is_on()
    {
        var q = QemuArgParser.Parse(Without(Without(Fixture("start-argv-microvm.txt"), "-sandbox"), "-no-acpi"));
        var config = QemuVmConfig.Build(q, NoKvm);
        Assert.Equal(AcceleratorKind.Emu, config.Accelerator);
        Assert.Equal(256UL << 20, config.MemoryBytes);
        Assert.Equal(1, config.Cpus);
        Assert.Equal("/var/lib/libvirt/boot/vmlinuz", config.Kernel);
        Assert.Equal("console=ttyS0 panic=-1", config.Append);
        // The serial log is the descriptor libvirt passed in fd set 0 (a pipe to virtlogd), written as it is: the
        // pipe is root's, so the unprivileged emulator could not reopen it through /proc/self/fd.
        Assert.Equal("pty,logfd=31", config.Serial);
        Assert.Empty(config.Disks);
        Assert.False(config.EmptyMachine);
    }

    [Fact]
    public void Libvirts_isa_panic_device_becomes_the_pvpanic_port()
    {
        // <panic model='isa'><address type='isa' iobase='0x506'/></panic>, in libvirt's JSON -device form.
        var q = QemuArgParser.Parse(["-device", "{\"driver\":\"pvpanic\",\"ioport\":1286}"]);
        Assert.Equal(new DeviceSpec(DeviceSpec.PvPanic, 0x506, 1), Assert.Single(q.TestDevices));
        q = QemuArgParser.Parse(["-device", "pvpanic"]);
        Assert.Equal(new DeviceSpec(DeviceSpec.PvPanic, 0x505, 1), Assert.Single(q.TestDevices));
        Assert.Equal("-device: --device 'pvpanic,ioport=70000': the port must lie in 0..0xFFFF", Refusal(["-device", "pvpanic,ioport=70000"]));
        Assert.Contains(QemuTypes.All, t => t.Name == "pvpanic");
    }

    [Fact]
    public void No_acpi_is_refused_with_what_to_change_in_the_domain()
    {
        var q = QemuArgParser.Parse(Without(Fixture("start-argv-microvm.txt"), "-sandbox"));
        var ex = Assert.Throws<QemuArgException>(() => QemuVmConfig.Build(q, NoKvm));
        Assert.StartsWith("-no-acpi: ", ex.Message);
        Assert.Contains("<features><acpi/></features>", ex.Message);
    }

    [Theory]
    [InlineData("start-argv-pc.txt")]
    [InlineData("start-argv-migrate-dst.txt")]
    public void The_pc_machine_is_refused_with_a_pointer_to_microvm(string fixture)
    {
        string message = Refusal(Fixture(fixture));
        Assert.Equal("-machine: type 'pc-i440fx-7.2' (a PC with PCI and firmware) is not supported by SharpVmm: use machine type 'microvm'", message);
    }

    [Fact]
    public void The_migration_destination_argv_asks_for_a_deferred_incoming_migration()
    {
        var args = Without(Fixture("start-argv-migrate-dst.txt"), "-sandbox");
        int m = args.IndexOf("-machine");
        args[m + 1] = "microvm,usb=off,dump-guest-core=off,memory-backend=pc.ram";
        // The live CPU definition libvirt rewrote from QEMU's qom-get results carries feature flags SharpVmm cannot set.
        Assert.Equal("-cpu: feature flags ('hypervisor=on,lahf-lm=on') are not supported: SharpVmm's CPU model is fixed", Refusal(args));
        args[args.IndexOf("-cpu") + 1] = "qemu64";
        var q = QemuArgParser.Parse(args);
        Assert.Equal("defer", q.Incoming);
        Assert.True(QemuVmConfig.Build(q, NoKvm).IncomingMigration);
    }

    [Fact]
    public void The_capability_probe_argv_is_an_empty_machine_with_a_daemonized_monitor()
    {
        var q = QemuArgParser.Parse(["-S", "-no-user-config", "-nodefaults", "-nographic", "-machine", "none,accel=kvm:tcg",
            "-qmp", "unix:/var/lib/libvirt/qemu/qmp-ABC123/qmp.monitor,server=on,wait=off",
            "-pidfile", "/var/lib/libvirt/qemu/qmp-ABC123/qmp.pid", "-daemonize"]);
        Assert.Equal("none", q.Machine);
        Assert.Equal([AcceleratorKind.Kvm, AcceleratorKind.Emu], q.Accelerators);
        Assert.Equal(new QemuMonitor(null, "unix:/var/lib/libvirt/qemu/qmp-ABC123/qmp.monitor"), Assert.Single(q.Monitors));
        Assert.Equal("/var/lib/libvirt/qemu/qmp-ABC123/qmp.pid", q.PidFile);
        Assert.True(q.Daemonize);
        var config = QemuVmConfig.Build(q, NoKvm);
        Assert.True(config.EmptyMachine);
        Assert.Equal(AcceleratorKind.Emu, config.Accelerator); // kvm:tcg falls back
        Assert.Equal(AcceleratorKind.Kvm, QemuVmConfig.Build(q, _ => (true, "")).Accelerator);
        config.Validate();
    }

    [Fact]
    public void Kvm_alone_where_it_is_unusable_is_refused_naming_accel()
    {
        var q = QemuArgParser.Parse(["-machine", "none", "-accel", "kvm"]);
        var ex = Assert.Throws<QemuArgException>(() => QemuVmConfig.Build(q, NoKvm));
        Assert.Equal("-accel: kvm is not usable here (no /dev/kvm): use tcg (libvirt: <domain type='qemu'>)", ex.Message);
    }

    [Fact]
    public void Json_and_legacy_forms_of_object_and_device_mean_the_same()
    {
        string[] Common(string obj, string dev) => ["-object", obj, "-chardev", "pty,id=charserial0", "-device", dev];
        var json = QemuArgParser.Parse(Common(
            """{"qom-type":"memory-backend-ram","id":"microvm.ram","size":268435456}""",
            """{"driver":"isa-serial","chardev":"charserial0","id":"serial0","index":0}"""));
        var legacy = QemuArgParser.Parse(Common("memory-backend-ram,id=microvm.ram,size=268435456", "isa-serial,chardev=charserial0,id=serial0,index=0"));
        foreach (var q in new[] { json, legacy })
        {
            Assert.Equal(268435456UL, q.MemoryBackends["microvm.ram"]);
            Assert.Equal("charserial0", q.SerialChardev);
            Assert.Equal("serial0", q.SerialDeviceId);
        }
    }

    [Fact]
    public void Blockdev_nodes_and_netdevs_become_virtio_disks_and_nics()
    {
        string dir = Directory.CreateTempSubdirectory("sharpvmm-qemuargs-").FullName;
        try
        {
            string disk = Path.Combine(dir, "d,isk.qcow2");
            string kernel = Path.Combine(dir, "vmlinuz");
            File.WriteAllText(disk, "");
            File.WriteAllText(kernel, "");
            var q = QemuArgParser.Parse([
                "-kernel", kernel,
                "-blockdev", $$"""{"driver":"file","filename":"{{disk}}","node-name":"libvirt-1-storage","auto-read-only":true,"discard":"unmap"}""",
                // As libvirt 9.0 wrote them for a microvm domain with <address type='virtio-mmio'/> on SharpVmm.
                "-blockdev", """{"node-name":"libvirt-1-format","read-only":false,"driver":"qcow2","file":"libvirt-1-storage","backing":null}""",
                "-device", "virtio-blk-device,drive=libvirt-1-format,id=virtio-disk0,bootindex=1",
                "-drive", $"file={disk.Replace(",", ",,")},format=raw,if=virtio,readonly=on",
                "-netdev", "user,id=hostnet0",
                "-device", "virtio-net-device,netdev=hostnet0,id=net0,mac=52:54:00:aa:bb:cc",
                "-netdev", """{"type":"tap","ifname":"vnet7","id":"hostnet1"}""",
                "-device", """{"driver":"virtio-net-pci","netdev":"hostnet1","id":"net1","bus":"pci.0","addr":"0x2"}""",
            ]);
            var config = QemuVmConfig.Build(q, NoKvm);
            Assert.Equal([new DiskSpec(disk, "qcow2", false), new DiskSpec(disk, "raw", true)], config.Disks);
            Assert.Equal(NetBackendKind.User, config.Nets[0].Kind);
            Assert.Equal("52:54:00:aa:bb:cc", config.Nets[0].Mac.ToString());
            Assert.Equal(new NetSpec(NetBackendKind.Tap, "vnet7"), config.Nets[1]);
            Assert.Equal("virtio-disk0", q.Disks[0].Id);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(new[] { "-vnc", ":0" }, "-vnc: is not supported by SharpVmm")]
    [InlineData(new[] { "-machine", "q35" }, "-machine: type 'q35' (a PC with PCI and firmware) is not supported by SharpVmm: use machine type 'microvm'")]
    [InlineData(new[] { "-machine", "microvm,pit=off" }, "-machine: 'pit' is not supported by SharpVmm")]
    [InlineData(new[] { "-device", "e1000,netdev=n0" }, "-device: 'e1000' is not supported by SharpVmm (supported: isa-serial, virtio-blk-pci, virtio-blk-device, virtio-net-pci, virtio-net-device, virtio-rng-pci, virtio-rng-device, virtio-balloon-pci, virtio-balloon-device, pc-testdev, isa-debug-exit, pvpanic)")]
    [InlineData(new[] { "-chardev", "pty,id=c0", "-device", "isa-serial,chardev=c0,iobase=0x2f8" }, "-device: isa-serial: 'iobase' is not supported by SharpVmm")]
    [InlineData(new[] { "-object", "iothread,id=io1" }, "-object: type 'iothread' is not supported by SharpVmm (supported: secret, memory-backend-ram)")]
    [InlineData(new[] { "-overcommit", "mem-lock=on" }, "-overcommit: mem-lock=on is not supported by SharpVmm (supported: off)")]
    [InlineData(new[] { "-netdev", "tap,id=n0,fd=23" }, "-netdev: tap with fd= (a tap libvirt opened) is not supported by SharpVmm: use <interface type='ethernet'> with a <target dev=.../> SharpVmm opens by name")]
    [InlineData(new[] { "-m" }, "-m: needs an argument")]
    [InlineData(new[] { "disk.img" }, "disk.img: SharpVmm takes no disk image as a bare argument: use -blockdev or -drive")]
    [InlineData(new[] { "-smp", "4,sockets=1,cores=2,threads=1" }, "-smp: the topology gives 2 vCPUs, not 4")]
    [InlineData(new[] { "-device", "{\"driver\":\"isa-serial\"" }, "-device: not valid JSON")]
    public void Unsupported_arguments_are_refused_in_one_line_naming_the_option(string[] args, string expected)
    {
        string message = Refusal(args);
        Assert.StartsWith(expected, message);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void A_doubled_comma_is_a_literal_comma_and_an_implied_key_takes_the_first_item()
    {
        var o = QemuOptions.Parse("-drive", "file=/a,,b.img,format=raw");
        Assert.Equal("/a,b.img", o.Get("file"));
        var n = QemuOptions.Parse("-name", "guest,,x,debug-threads=on", "guest");
        Assert.Equal("guest,x", n.Get("guest"));
        Assert.True(n.GetBool("debug-threads"));
        Assert.Throws<QemuArgException>(() => QemuOptions.Parse("-m", "size=1,size=2", "size"));
    }

    [Fact]
    public void The_qmp_address_and_the_cpu_model_read_doubled_commas_as_the_other_options_do()
    {
        var q = QemuArgParser.Parse(["-qmp", "unix:/run/a,,b.sock,server=on,wait=off"]);
        Assert.Equal("unix:/run/a,b.sock", Assert.Single(q.Monitors).Address);
        Assert.Throws<QemuArgException>(() => QemuArgParser.Parse(["-qmp", "unix:/run/a.sock,server=on,wait=on"]));
        var cpu = Assert.Throws<QemuArgException>(() => QemuArgParser.Parse(["-cpu", "host,+x2apic"]));
        Assert.Contains("+x2apic", cpu.Message);
    }

    [Theory]
    [InlineData("-version", "version")]
    [InlineData("-help", "help")]
    [InlineData("-machine help", "machine")]
    [InlineData("-M help", "machine")]
    [InlineData("-device help", "device")]
    [InlineData("-cpu help", "cpu")]
    public void Help_requests_are_recognised(string argv, string topic)
    {
        var q = QemuArgParser.Parse(argv.Split(' '));
        Assert.Equal(topic, q.Help);
        Assert.False(string.IsNullOrWhiteSpace(QemuHelp.Text(topic)));
    }

    [Fact]
    public void Dev_fdset_paths_open_the_set_descriptor_and_unknown_sets_are_refused()
    {
        var q = QemuArgParser.Parse(["-add-fd", "set=3,fd=40,opaque=x"]);
        Assert.Equal("/proc/self/fd/40", QemuVmConfig.FdSetPath(q, "/dev/fdset/3"));
        Assert.Equal("/var/log/x", QemuVmConfig.FdSetPath(q, "/var/log/x"));
        Assert.Throws<QemuArgException>(() => QemuVmConfig.FdSetPath(q, "/dev/fdset/4"));
    }

    [Fact]
    public void The_qemu_personality_is_chosen_by_subcommand()
    {
        Assert.Equal(["-version"], QemuPersonality.Arguments(["qemu-system-x86_64", "-version"])!);
        Assert.Null(QemuPersonality.Arguments(["run", "--kernel", "x"]));
    }
}

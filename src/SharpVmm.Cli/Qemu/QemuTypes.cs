namespace SharpVmm.Cli.Qemu;

/// <summary>
/// The QOM types SharpVmm's QEMU personality has (qom-list-types), with the properties its command line accepts for
/// each (device-list-properties, qom-list-properties). libvirt decides what it may put in a domain's argv from these,
/// so only what -machine, -object, -device and -accel really take is listed.
/// </summary>
public static class QemuTypes
{
    public sealed record TypeInfo(string Name, string Parent, bool Abstract, (string Name, string Type)[] Properties);

    private static readonly (string, string)[] VirtioBus = [("bus", "str"), ("addr", "str"), ("bootindex", "int32")];

    public static readonly TypeInfo[] All =
    [
        new("accel", "object", true, []),
        new("tcg-accel", "accel", false, []),
        new("kvm-accel", "accel", false, []),
        new("machine", "object", true, [("type", "str"), ("accel", "str"), ("usb", "bool"), ("dump-guest-core", "bool"), ("memory-backend", "link<memory-backend>"), ("graphics", "bool")]),
        new("microvm-machine", "machine", false, [("acpi", "OnOffAuto")]),
        new("none-machine", "machine", false, []),
        new("device", "object", true, []),
        new("cpu", "device", true, []),
        new("x86_64-cpu", "cpu", true, []),
        new("qemu64-x86_64-cpu", "x86_64-cpu", false, []),
        new("max-x86_64-cpu", "x86_64-cpu", false, []),
        new("host-x86_64-cpu", "max-x86_64-cpu", false, []),
        new("isa-serial", "device", false, [("chardev", "str"), ("index", "uint32")]),
        new("virtio-mmio", "device", false, []),
        new("virtio-blk-pci", "device", false, [("drive", "str"), .. VirtioBus]),
        new("virtio-blk-device", "device", false, [("drive", "str")]),
        new("virtio-net-pci", "device", false, [("netdev", "str"), ("mac", "str"), .. VirtioBus]),
        new("virtio-net-device", "device", false, [("netdev", "str"), ("mac", "str")]),
        new("virtio-rng-pci", "device", false, VirtioBus),
        new("virtio-rng-device", "device", false, []),
        new("virtio-balloon-pci", "device", false, VirtioBus),
        new("virtio-balloon-device", "device", false, []),
        new("pc-testdev", "device", false, []),
        new("isa-debug-exit", "device", false, [("iobase", "uint32"), ("iosize", "uint32")]),
        new("pvpanic", "device", false, [("ioport", "uint16")]),
        new("secret", "object", false, [("file", "str"), ("data", "str"), ("format", "QCryptoSecretFormat")]),
        new("memory-backend", "object", true, [("size", "int")]),
        new("memory-backend-ram", "memory-backend", false, [("size", "int"), ("share", "bool"), ("prealloc", "bool")]),
        new("chardev", "object", true, []),
        new("chardev-socket", "chardev", false, []),
        new("chardev-pty", "chardev", false, []),
        new("chardev-file", "chardev", false, []),
        new("chardev-stdio", "chardev", false, []),
        new("chardev-null", "chardev", false, []),
    ];

    public static TypeInfo? Find(string name) => Array.Find(All, t => t.Name == name);

    /// <summary>True when <paramref name="type"/> is <paramref name="ancestor"/> or derives from it.</summary>
    public static bool Implements(TypeInfo type, string ancestor)
    {
        for (var t = type; t is not null; t = Find(t.Parent))
            if (t.Name == ancestor) return true;
        return false;
    }

    /// <summary>A type's properties with its ancestors' (what QOM lists for an instance of it).</summary>
    public static List<(string Name, string Type)> AllProperties(TypeInfo type)
    {
        var list = new List<(string, string)>();
        for (var t = type; t is not null; t = Find(t.Parent)) list.AddRange(t.Properties);
        return list;
    }
}

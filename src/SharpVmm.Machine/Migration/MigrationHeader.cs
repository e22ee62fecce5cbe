namespace SharpVmm.Machine.Migration;

/// <summary>
/// What the source says about its VM before any page: the target must have been built from the same options, so the
/// RAM layout, vCPU count, accelerator and device list must match exactly.
/// </summary>
public sealed record MigrationHeader(uint Version, int VcpuCount, string Accelerator, IReadOnlyList<(ulong Base, ulong Size)> Regions,
    IReadOnlyList<string> DeviceIds)
{
    /// <summary>The header describing <paramref name="vm"/>.</summary>
    public static MigrationHeader Describe(VirtualMachine vm)
    {
        var regions = new List<(ulong, ulong)>();
        foreach (var r in vm.Memory.Regions) regions.Add((r.GuestBase, r.Size));
        var ids = new List<string>();
        foreach (var (id, _) in vm.Devices.All) ids.Add(id);
        return new MigrationHeader(MigrationProtocol.Version, vm.VcpuCount, vm.Accelerator.Name, regions, ids);
    }

    public ulong RamBytes
    {
        get
        {
            ulong total = 0;
            foreach (var (_, size) in Regions) total += size;
            return total;
        }
    }

    /// <summary>Throws a <see cref="MigrationException"/> naming the first difference between the source's VM (this) and the target's.</summary>
    public void CheckCompatibleWith(MigrationHeader target)
    {
        if (Version != target.Version)
            throw new MigrationException($"the source speaks migration stream version {Version}, this SharpVmm speaks version {target.Version}: migrate between the same SharpVmm versions");
        if (VcpuCount != target.VcpuCount)
            throw new MigrationException($"the source VM has {VcpuCount} vCPU(s), this one {target.VcpuCount}: start the target with the source's --cpus");
        if (Accelerator != target.Accelerator)
            throw new MigrationException($"the source VM runs on the {Accelerator} accelerator, this one on {target.Accelerator}: start the target with --accel {Accelerator}");
        if (!SameRegions(Regions, target.Regions))
            throw new MigrationException($"the source VM's RAM is {Describe(Regions)}, this one's {Describe(target.Regions)}: start the target with the source's --memory");
        if (!SameIds(DeviceIds, target.DeviceIds))
            throw new MigrationException($"the source VM has the devices [{string.Join(", ", DeviceIds)}], this one [{string.Join(", ", target.DeviceIds)}]: start the target with the source's options (--disk, --rng, ...)");
    }

    private static bool SameRegions(IReadOnlyList<(ulong, ulong)> a, IReadOnlyList<(ulong, ulong)> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++)
            if (a[i] != b[i]) return false;
        return true;
    }

    private static bool SameIds(IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++)
            if (!string.Equals(a[i], b[i], StringComparison.Ordinal)) return false;
        return true;
    }

    private static string Describe(IReadOnlyList<(ulong Base, ulong Size)> regions)
    {
        ulong total = 0;
        var parts = new List<string>();
        foreach (var (b, s) in regions)
        {
            total += s;
            parts.Add($"0x{b:x}+0x{s:x}");
        }
        return $"{total >> 20} MiB ({string.Join(", ", parts)})";
    }
}

using SharpVmm.Core.Cpu;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;
using SharpVmm.Kvm.Interop;
using SharpVmm.Memory;

namespace SharpVmm.Kvm;

/// <summary>
/// The <c>kvm</c> accelerator: one KVM VM whose memory slots are the <see cref="GuestMemory"/> regions
/// (slot = <see cref="MemoryRegion.Slot"/>), with vCPUs that send port I/O and MMIO to the given <see cref="IIoBus"/>.
/// Dispose it before the GuestMemory: KVM maps the regions' host pages until the VM is gone.
/// </summary>
public sealed unsafe partial class KvmAccelerator : IAccelerator, IIrqRouter, IDirtyLog
{
    private readonly KvmVcpu?[] _vcpus;
    private readonly bool[] _dirtyLogging;
    private readonly uint[] _msrsToSave;
    private readonly KvmCpuidEntry2[] _supportedCpuid;
    private readonly Lock _lock = new();
    private bool _disposed;

    private KvmAccelerator(KvmSystem system, KvmVm vm, GuestMemory memory, IIoBus bus, KvmOptions options)
    {
        System = system;
        Vm = vm;
        Memory = memory;
        Bus = bus;
        Options = options;
        _vcpus = new KvmVcpu?[options.VcpuCount];
        _dirtyLogging = new bool[memory.Regions.Count];
        _supportedCpuid = system.GetSupportedCpuid();
        _msrsToSave = ChooseMsrs(system.GetMsrIndexList());
        HasVcpuEvents = vm.HasCapability(KvmCap.VcpuEvents);
        HasXsave = vm.HasCapability(KvmCap.Xsave);
        HasXcrs = vm.HasCapability(KvmCap.Xcrs);
        PkruXsaveOffset = HasXsave ? State.XsavePkru.OffsetFrom(_supportedCpuid) : null;
    }

    public string Name => "kvm";
    public KvmSystem System { get; }
    public KvmVm Vm { get; }
    public GuestMemory Memory { get; }
    public IIoBus Bus { get; }
    public KvmOptions Options { get; }
    internal bool HasVcpuEvents { get; }
    internal bool HasXsave { get; }
    internal bool HasXcrs { get; }

    /// <summary>Where PKRU lies in the XSAVE image (CPUID.0xD.9 as KVM reports it); null when KVM has no PKRU state.</summary>
    internal int? PkruXsaveOffset { get; }

    /// <summary>This accelerator when the in-kernel irqchip is on (GSIs go to KVM_IRQ_LINE), otherwise null.</summary>
    public IIrqRouter? IrqRouter => Options.IrqChip ? this : null;

    /// <summary>KVM's dirty log: the guest writes RAM natively, so only the kernel sees its stores.</summary>
    public IDirtyLog? DirtyLog => this;

    /// <summary>
    /// Opens KVM, creates the VM, registers every RAM region as a memory slot and, with <see cref="KvmOptions.IrqChip"/>,
    /// the in-kernel irqchip and PIT. Throws <see cref="KvmException"/> (kind says whether KVM is absent, forbidden,
    /// too old or lacks a capability) so the caller can fall back to the emu accelerator.
    /// </summary>
    public static KvmAccelerator Create(GuestMemory memory, IIoBus bus, KvmOptions options)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(bus);
        ArgumentNullException.ThrowIfNull(options);
        if (options.VcpuCount is < 1 or > 255)
            throw new KvmException(KvmErrorKind.InvalidArgument, $"vCPU count {options.VcpuCount} is out of range: give 1 to 255");

        foreach (var region in memory.Regions)
        {
            if (Overlaps(region, options.TssAddress, 0x3000) || Overlaps(region, options.IdentityMapAddress, 0x1000))
                throw new KvmException(KvmErrorKind.InvalidArgument,
                    $"RAM region 0x{region.GuestBase:x}+0x{region.Size:x} overlaps KVM's TSS (0x{options.TssAddress:x}, 3 pages) or identity-map page (0x{options.IdentityMapAddress:x}): move KvmOptions.TssAddress/IdentityMapAddress into a hole");
        }

        var system = KvmSystem.Open(options.DevicePath);
        KvmVm? vm = null;
        try
        {
            system.RequireCapability(KvmCap.UserMemory, "guest RAM");
            system.RequireCapability(KvmCap.ImmediateExit, "kicking vCPUs without races");
            int maxVcpus = Math.Max(system.CheckExtension(KvmCap.MaxVcpus), system.CheckExtension(KvmCap.NrVcpus));
            if (maxVcpus == 0) maxVcpus = 4; // KVM API: no KVM_CAP_NR_VCPUS means at most 4
            if (options.VcpuCount > maxVcpus)
                throw new KvmException(KvmErrorKind.MissingCapability, $"this host's KVM allows {maxVcpus} vCPUs per VM, {options.VcpuCount} were asked for: lower the vCPU count");
            int slots = system.CheckExtension(KvmCap.NrMemslots);
            if (slots > 0 && memory.Regions.Count > slots)
                throw new KvmException(KvmErrorKind.MissingCapability, $"guest RAM has {memory.Regions.Count} regions, this host's KVM allows {slots} memory slots");

            vm = system.CreateVm();
            if (vm.HasCapability(KvmCap.SetIdentityMapAddr)) vm.SetIdentityMapAddr(options.IdentityMapAddress);
            if (vm.HasCapability(KvmCap.SetTssAddr)) vm.SetTssAddr(options.TssAddress);
            if (options.IrqChip)
            {
                vm.CreateIrqchip();
                vm.CreatePit2();
            }
            foreach (var region in memory.Regions)
                vm.SetUserMemoryRegion((uint)region.Slot, region.GuestBase, region.Size, (nint)region.Host);
            return new KvmAccelerator(system, vm, memory, bus, options);
        }
        catch
        {
            vm?.Dispose();
            system.Dispose();
            throw;
        }
    }

    private static bool Overlaps(MemoryRegion region, ulong start, ulong length)
        => start < region.GuestEnd && region.GuestBase < start + length;

    private static uint[] ChooseMsrs(uint[] supported)
    {
        var set = new HashSet<uint>(supported);
        var list = new List<uint>();
        foreach (uint msr in State.MsrCatalog.Saved)
            if (set.Contains(msr)) list.Add(msr);
        return [.. list];
    }

    /// <summary>
    /// Creates vCPU <paramref name="index"/> (its APIC ID too) with CPUID from KVM's supported list, filtered by
    /// <see cref="Cpuid.CpuidFilter"/>. Each index once; create them all before running any.
    /// </summary>
    public IVcpu CreateVcpu(int index) => CreateKvmVcpu(index);

    public KvmVcpu CreateKvmVcpu(int index)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if ((uint)index >= (uint)_vcpus.Length)
                throw new KvmException(KvmErrorKind.InvalidArgument, $"vCPU index {index} is out of range: the VM was created for {_vcpus.Length} vCPUs");
            if (_vcpus[index] is not null)
                throw new KvmException(KvmErrorKind.InvalidArgument, $"vCPU {index} was created already (KVM keeps a vCPU until its VM is destroyed, even after Dispose)");
            var fd = Vm.CreateVcpu(index);
            try
            {
                fd.SetCpuid(Cpuid.CpuidFilter.ForVcpu(_supportedCpuid, index));
                var vcpu = new KvmVcpu(this, fd, _msrsToSave);
                _vcpus[index] = vcpu;
                return vcpu;
            }
            catch
            {
                fd.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// KVM_IRQ_LINE on the in-kernel irqchip (GSI 0-15 reach the PIC and IOAPIC, 16-23 the IOAPIC only). Callable from
    /// any thread (device threads included) while vCPUs run; no allocation.
    /// </summary>
    public void SetIrq(int gsi, bool level)
    {
        if (!Options.IrqChip)
            throw new KvmException(KvmErrorKind.InvalidArgument, "interrupt lines need the in-kernel irqchip (KvmOptions.IrqChip); without it the machine routes interrupts itself");
        ArgumentOutOfRangeException.ThrowIfNegative(gsi);
        Vm.SetIrqLine((uint)gsi, level);
    }

    /// <summary>Turns KVM's dirty-page logging on or off for every RAM region.</summary>
    public void SetDirtyLogging(bool enabled)
    {
        foreach (var region in Memory.Regions) SetDirtyLogging(region, enabled);
    }

    /// <summary>
    /// Re-registers <paramref name="region"/>'s slot with or without KVM_MEM_LOG_DIRTY_PAGES. Check
    /// <see cref="ProbeDirtyLogWorks()"/> first: some KVMs (PVM's emulator here) never set a bit.
    /// </summary>
    public void SetDirtyLogging(MemoryRegion region, bool enabled)
    {
        int i = IndexOf(region);
        Vm.SetUserMemoryRegion((uint)region.Slot, region.GuestBase, region.Size, (nint)region.Host,
            enabled ? KvmUserspaceMemoryRegion.LogDirtyPages : 0);
        _dirtyLogging[i] = enabled;
    }

    public bool IsDirtyLogging(MemoryRegion region) => _dirtyLogging[IndexOf(region)];

    /// <summary>Words of bitmap (one bit per 4 KiB page) <see cref="HarvestDirtyLog"/> needs for <paramref name="region"/>.</summary>
    public static int DirtyLogWords(MemoryRegion region) => (int)((((region.Size + 0xFFF) >> 12) + 63) / 64);

    /// <summary>
    /// KVM_GET_DIRTY_LOG for <paramref name="region"/>: the guest pages KVM saw written since the last harvest (or since
    /// logging was turned on), one bit per page; KVM's copy is cleared. Pages the VMM itself wrote are in
    /// <see cref="MemoryRegion.Dirty"/>, not here.
    /// </summary>
    public void HarvestDirtyLog(MemoryRegion region, Span<ulong> bitmap)
    {
        int i = IndexOf(region);
        if (!_dirtyLogging[i])
            throw new KvmException(KvmErrorKind.InvalidArgument, $"dirty logging is off for RAM region {region.Slot}: call SetDirtyLogging first");
        Vm.GetDirtyLog((uint)region.Slot, region.Size, bitmap);
    }

    private int IndexOf(MemoryRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        var regions = Memory.Regions;
        for (int i = 0; i < regions.Count; i++)
            if (ReferenceEquals(regions[i], region)) return i;
        throw new KvmException(KvmErrorKind.InvalidArgument, $"RAM region {region.Slot} at 0x{region.GuestBase:x} does not belong to this VM's guest memory");
    }

    /// <summary>True when KVM's dirty log records a guest store; see <see cref="DirtyLogProbe"/>.</summary>
    public bool ProbeDirtyLogWorks() => DirtyLogProbe.Run(System, Options, out _);

    /// <summary>As <see cref="ProbeDirtyLogWorks()"/>, with a sentence saying what was seen, for the log.</summary>
    public bool ProbeDirtyLogWorks(out string detail) => DirtyLogProbe.Run(System, Options, out detail);

    /// <summary>Disposes remaining vCPUs, the VM and /dev/kvm. No vCPU may be running.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var v in _vcpus) v?.DisposeFd();
            Array.Clear(_vcpus);
        }
        Vm.Dispose();
        System.Dispose();
    }
}

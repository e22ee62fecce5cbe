using System.Buffers.Binary;
using System.Security.Cryptography;
using SharpVmm.Core.Cpu;
using SharpVmm.Core.State;

namespace SharpVmm.Machine.State;

/// <summary>
/// The machine-state record (everything but RAM), as <see cref="VirtualMachine.SaveMachineState"/> writes it:
/// <code>
///   "SVMSTATE"  u32 format version  i64 body length  body  SHA-256(body)
///   body = section "machine" (vCPU count, RAM size, accelerator, per-vCPU parked-halted flags)
///          section "clock"   (guest ns, TSC Hz)
///          section "vcpuN"   (VcpuStateCodec) for each vCPU
///          section "accel"   (present flag; StateId, version, payload of the accelerator's IStateful state)
///          section "devices" (count; per device a section tagged with its id: StateId, version, payload)
/// </code>
/// All integers little-endian. The hash lets a reader refuse a corrupt record before changing anything.
/// </summary>
public static class MachineStateFormat
{
    public const int FormatVersion = 1;
    public static ReadOnlySpan<byte> Magic => "SVMSTATE"u8;
    /// <summary>Upper bound on a record's body, so a corrupt length cannot make a reader allocate gigabytes.</summary>
    public const long MaxBodyBytes = 256L << 20;
    private const int HashBytes = 32;

    internal static byte[] Save(VirtualMachine vm, IVcpu[] vcpus, bool[] halted)
    {
        var w = new StateWriter(64 * 1024);
        using (w.Section("machine"))
        {
            w.WriteI32(vcpus.Length);
            w.WriteU64(vm.Memory.TotalSize);
            w.WriteString(vm.Accelerator.Name);
            foreach (bool h in halted) w.WriteBool(h);
        }
        using (w.Section("clock"))
        {
            w.WriteI64(vm.Clock.NowNs);
            w.WriteU64(vm.Clock.TscHz);
        }
        for (int i = 0; i < vcpus.Length; i++)
            using (w.Section($"vcpu{i}")) VcpuStateCodec.Write(w, vcpus[i].GetState());
        using (w.Section("accel"))
        {
            bool has = vm.Accelerator is IStateful;
            w.WriteBool(has);
            if (has) WriteComponent(w, (IStateful)vm.Accelerator);
        }
        var devices = vm.Devices.All;
        using (w.Section("devices"))
        {
            int count = 0;
            foreach (var d in devices)
            {
                if (d.State is not null) count++;
                else
                    throw new StateFormatException(
                        $"device '{d.Id}' ({d.Kind}) cannot save its state, so this VM cannot be snapshotted or migrated without losing it");
            }
            w.WriteI32(count);
            foreach (var d in devices)
                using (w.Section(d.Id)) WriteComponent(w, d.State!);
        }

        var body = w.WrittenSpan;
        var record = new byte[Magic.Length + 4 + 8 + body.Length + HashBytes];
        var span = record.AsSpan();
        Magic.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], FormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(span[12..], body.Length);
        body.CopyTo(span[20..]);
        SHA256.HashData(body, span[(20 + body.Length)..]);
        return record;
    }

    private static void WriteComponent(StateWriter w, IStateful c)
    {
        w.WriteString(c.StateId);
        w.WriteI32(c.StateVersion);
        using (w.Section("state")) c.SaveState(w);
    }

    /// <summary>Reads one record from <paramref name="stream"/> (exactly its bytes) and parses it; applies nothing.</summary>
    public static SavedMachine Read(Stream stream)
    {
        Span<byte> head = stackalloc byte[20];
        ReadExactly(stream, head, "the machine-state header");
        if (!head[..8].SequenceEqual(Magic))
            throw new StateFormatException("not SharpVmm machine state: the record does not start with \"SVMSTATE\" (wrong file, or corrupt)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(head[8..]);
        if (version != FormatVersion)
            throw new StateFormatException($"machine state format version {version} is not supported: this SharpVmm reads version {FormatVersion}");
        long length = BinaryPrimitives.ReadInt64LittleEndian(head[12..]);
        if (length < 0 || length > MaxBodyBytes)
            throw new StateFormatException($"machine state claims a body of {length} bytes (at most {MaxBodyBytes} are allowed): corrupt");
        var body = new byte[length];
        ReadExactly(stream, body, "the machine-state body");
        Span<byte> hash = stackalloc byte[HashBytes];
        ReadExactly(stream, hash, "the machine-state checksum");
        Span<byte> actual = stackalloc byte[HashBytes];
        SHA256.HashData(body, actual);
        if (!actual.SequenceEqual(hash))
            throw new StateFormatException("machine state is corrupt: its SHA-256 checksum does not match its contents");
        return SavedMachine.Parse(new StateReader(body, "machine state"));
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string what)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = stream.Read(buffer[done..]);
            if (n == 0) throw new StateFormatException($"truncated machine state: the stream ended in {what} ({done} of {buffer.Length} bytes)");
            done += n;
        }
    }
}

/// <summary>A parsed machine-state record: checked for structure, not yet compared with or applied to a VM.</summary>
public sealed class SavedMachine
{
    public sealed record Component(string Id, string StateId, int Version, ReadOnlyMemory<byte> Payload);

    public int VcpuCount { get; private init; }
    public ulong RamSize { get; private init; }
    public string Accelerator { get; private init; } = "";
    public bool[] Halted { get; private init; } = [];
    public long ClockNs { get; private init; }
    public ulong TscHz { get; private init; }
    public VcpuState[] Vcpus { get; private init; } = [];
    public Component? AcceleratorState { get; private init; }
    public IReadOnlyList<Component> Devices { get; private init; } = [];

    internal static SavedMachine Parse(StateReader r)
    {
        var m = r.ReadSection("machine");
        int cpus = m.ReadInt(1, 4096, "vCPU count");
        ulong ram = m.ReadU64("RAM size");
        string accel = m.ReadString(64, "accelerator name");
        var halted = new bool[cpus];
        for (int i = 0; i < cpus; i++) halted[i] = m.ReadBool("halted flag");
        m.ExpectEnd();

        var c = r.ReadSection("clock");
        long now = c.ReadI64("guest time");
        if (now < 0) throw c.Error($"guest time {now} ns is negative");
        ulong tscHz = c.ReadU64("TSC frequency");
        c.ExpectEnd();

        var vcpus = new VcpuState[cpus];
        for (int i = 0; i < cpus; i++)
        {
            var v = r.ReadSection($"vcpu{i}");
            vcpus[i] = VcpuStateCodec.Read(v);
            v.ExpectEnd();
        }

        var a = r.ReadSection("accel");
        Component? accelState = a.ReadBool("accelerator-state flag") ? ReadComponent(a, "accelerator") : null;
        a.ExpectEnd();

        var d = r.ReadSection("devices");
        int count = d.ReadInt(0, 1024, "device count");
        var devices = new List<Component>(count);
        var seen = new HashSet<string>();
        for (int i = 0; i < count; i++)
        {
            var (id, body) = d.ReadAnySection();
            if (!seen.Add(id)) throw d.Error($"device '{id}' has two sections");
            devices.Add(ReadComponent(body, id));
            body.ExpectEnd();
        }
        d.ExpectEnd();
        r.ExpectEnd();
        return new SavedMachine
        {
            VcpuCount = cpus, RamSize = ram, Accelerator = accel, Halted = halted, ClockNs = now, TscHz = tscHz,
            Vcpus = vcpus, AcceleratorState = accelState, Devices = devices,
        };
    }

    private static Component ReadComponent(StateReader r, string id)
    {
        string stateId = r.ReadString(128, "state id");
        int version = r.ReadInt(1, int.MaxValue, "state version");
        var (tag, body) = r.ReadAnySection();
        if (tag != "state") throw r.Error($"expected the state of '{id}', found section '{tag}'");
        return new Component(id, stateId, version, body.ReadRawMemory());
    }

    /// <summary>Throws <see cref="StateFormatException"/> naming the first difference between the saved machine and <paramref name="vm"/>.</summary>
    public void CheckMatches(VirtualMachine vm)
    {
        if (VcpuCount != vm.VcpuCount)
            throw new StateFormatException($"the saved machine has {VcpuCount} vCPU(s), this one {vm.VcpuCount}: start it with --cpus {VcpuCount}");
        if (RamSize != vm.Memory.TotalSize)
            throw new StateFormatException($"the saved machine has {RamSize >> 20} MiB of RAM, this one {vm.Memory.TotalSize >> 20} MiB: start it with --memory {RamSize >> 20}M");
        if (TscHz != vm.Clock.TscHz)
            throw new StateFormatException($"the saved guest's TSC ran at {TscHz} Hz, this VM's at {vm.Clock.TscHz} Hz");
        // vCPU state is portable, but the interrupt controllers live in the kernel on one and in devices on the other.
        if (Accelerator != vm.Accelerator.Name)
            throw new StateFormatException($"the state was saved on the {Accelerator} accelerator and this VM uses {vm.Accelerator.Name}: start it with --accel {Accelerator}");
        bool accelStateful = vm.Accelerator is IStateful;
        if ((AcceleratorState is not null) != accelStateful)
            throw new StateFormatException($"the saved {Accelerator} accelerator {(accelStateful ? "has no" : "has")} state of its own, this one {(accelStateful ? "does" : "does not")}: saved by another SharpVmm version?");
        if (AcceleratorState is { } acc) CheckKind(acc, (IStateful)vm.Accelerator);

        var present = vm.Devices.All;
        var byId = new Dictionary<string, Component>();
        foreach (var c in Devices) byId[c.Id] = c;
        foreach (var d in present)
        {
            if (!byId.Remove(d.Id, out var saved))
                throw new StateFormatException($"this VM has device '{d.Id}' but the saved machine has no state for it: build the VM with the same options as the saved one");
            if (d.State is not { } s)
                throw new StateFormatException($"device '{d.Id}' ({d.Kind}) cannot load saved state");
            CheckKind(saved, s);
        }
        foreach (var id in byId.Keys)
            throw new StateFormatException($"the saved machine has device '{id}' that this VM lacks: build the VM with the same options as the saved one");
    }

    private static void CheckKind(Component saved, IStateful target)
    {
        if (saved.StateId != target.StateId)
            throw new StateFormatException($"'{saved.Id}' was saved as a {saved.StateId} but is a {target.StateId} in this VM");
        if (saved.Version > target.StateVersion)
            throw new StateFormatException($"'{saved.Id}' ({saved.StateId}) was saved in version {saved.Version}; this SharpVmm reads up to {target.StateVersion}");
    }

    internal void Apply(VirtualMachine vm, IVcpu[] vcpus, bool[] halted)
    {
        // The clock first, stopped at the saved instant: vCPU TSCs and device timers are restored relative to it.
        vm.Clock.Pause();
        vm.Clock.Restore(ClockNs);
        if (AcceleratorState is { } acc) Load(acc, (IStateful)vm.Accelerator);
        for (int i = 0; i < vcpus.Length; i++)
        {
            vcpus[i].SetState(Vcpus[i]);
            halted[i] = Halted[i];
        }
        // Devices after the vCPUs: an emulated LAPIC's full state replaces what SetState wrote through CR8.
        foreach (var c in Devices) Load(c, (IStateful)vm.Devices.Find(c.Id)!);
    }

    private static void Load(Component c, IStateful target)
    {
        var r = new StateReader(c.Payload, $"state of '{c.Id}' ({c.StateId} v{c.Version})");
        target.LoadState(r, c.Version);
        r.ExpectEnd();
    }
}

using SharpVmm.Boot.Flat;
using SharpVmm.Core.State;
using SharpVmm.Machine.Board;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Machine.State;

namespace SharpVmm.Machine.Tests.Snapshot;

/// <summary>Whole-VM snapshots of a counting guest: saved mid-run, restored into a new VM, the count goes on.</summary>
public sealed class SnapshotTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpvmm-snap-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    // PVM runs ~1.5M guest instructions/s, the emulator far more: a tick should take ~10-50 ms on either.
    // Long enough between ticks that the test pauses the guest well before its last tick: emu's translator runs this
    // delay loop at some 2000 MIPS (3 ms a tick), the interpreter at some 150 (40 ms a tick).
    private static int Delay(AcceleratorKind accel) => accel == AcceleratorKind.Kvm ? 10_000 : 2_000_000;

    private string Guest(int ticks, int delay)
    {
        string bin = Path.Combine(_dir, $"count-{ticks}-{delay}.bin");
        File.WriteAllBytes(bin, CountingGuest.Assemble(ticks, delay));
        return bin;
    }

    private VmConfig Config(string bin, AcceleratorKind accel, string serial, int cpus = 1, ulong memory = 64UL << 20) => new()
    {
        Accelerator = accel,
        MemoryBytes = memory,
        Cpus = cpus,
        Flat = new FlatImageSpec(bin, 0x1000, EntryMode.Real),
        Serial = "file:" + Path.Combine(_dir, serial),
    };

    private string Read(string serial)
    {
        string p = Path.Combine(_dir, serial);
        if (!File.Exists(p)) return "";
        using var f = new FileStream(p, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(f).ReadToEnd();
    }

    /// <summary>Runs the guest until it has printed <paramref name="lines"/> lines, pauses it and saves a snapshot.</summary>
    private string SnapshotMidRun(VmConfig config, string serial, int lines, out string printedBefore)
    {
        string snap = Path.Combine(_dir, "vm.snap");
        using var vm = VmBuilder.Build(config);
        vm.Start();
        CountingGuest.WaitForLines(() => Read(serial), lines, TimeSpan.FromSeconds(60));
        vm.Pause();
        var saved = VmSnapshot.Save(vm, snap, "mid-run");
        Assert.Equal(VmState.Paused, vm.State); // a paused VM stays paused
        Assert.True(saved.StoredPages > 0 && saved.ZeroPages > saved.StoredPages, $"stored {saved.StoredPages}, zero {saved.ZeroPages}");
        printedBefore = Read(serial);
        vm.Stop();
        return snap;
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void A_guest_snapshotted_mid_run_continues_in_a_new_vm_where_it_stopped(AcceleratorKind accel)
    {
        const int ticks = 40;
        string bin = Guest(ticks, Delay(accel));
        string snap = SnapshotMidRun(Config(bin, accel, "a.txt"), "a.txt", 5, out string before);
        int printedTicks = before.Count(c => c == '\n');
        Assert.True(printedTicks < ticks, $"the guest finished before the snapshot ({printedTicks} lines)");

        using var restored = VmBuilder.Build(Config(bin, accel, "b.txt"));
        var result = VmSnapshot.Restore(restored, snap);
        Assert.Equal(RamRestoreMode.MappedLazily, result.Mode);
        var end = GuestHarness.RunToEnd(restored);
        Assert.Equal(CountingGuest.ExitCode, end.ExitCode);
        string after = Read("b.txt");
        // The two runs together print the sequence exactly once: no restart from 1, no gap, no repeat.
        Assert.Equal(CountingGuest.FullOutput(ticks), before + after);
        Assert.DoesNotContain("0001\n", after);
    }

    [Theory, KvmInlineData(AcceleratorKind.Kvm), InlineData(AcceleratorKind.Emu)]
    public void Reading_ram_instead_of_mapping_it_restores_the_same_guest(AcceleratorKind accel)
    {
        const int ticks = 12;
        string bin = Guest(ticks, Delay(accel));
        string snap = SnapshotMidRun(Config(bin, accel, "a.txt"), "a.txt", 3, out string before);
        using var restored = VmBuilder.Build(Config(bin, accel, "b.txt"));
        var result = VmSnapshot.Restore(restored, snap, mapRam: false);
        Assert.Equal(RamRestoreMode.Read, result.Mode);
        Assert.Contains("turned off", result.Describe());
        Assert.Equal(CountingGuest.ExitCode, GuestHarness.RunToEnd(restored).ExitCode);
        Assert.Equal(CountingGuest.FullOutput(ticks), before + Read("b.txt"));
    }

    [Fact]
    public void Saving_a_running_vm_pauses_it_for_the_save_and_resumes_it()
    {
        const int ticks = 30;
        string bin = Guest(ticks, Delay(AcceleratorKind.Emu));
        using var vm = VmBuilder.Build(Config(bin, AcceleratorKind.Emu, "a.txt"));
        var states = new List<VmState>();
        vm.StateChanged += s => { lock (states) states.Add(s); };
        vm.Start();
        CountingGuest.WaitForLines(() => Read("a.txt"), 2, TimeSpan.FromSeconds(60));
        VmSnapshot.Save(vm, Path.Combine(_dir, "live.snap"));
        Assert.Equal(VmState.Running, vm.State);
        lock (states) Assert.Equal([VmState.Running, VmState.Paused, VmState.Running], states);
        Assert.Equal(CountingGuest.ExitCode, WaitForExit(vm).ExitCode);
        Assert.Equal(CountingGuest.FullOutput(ticks), Read("a.txt"));
    }

    [Fact]
    public void Loading_a_snapshot_into_a_paused_vm_takes_it_back_in_time()
    {
        const int ticks = 60;
        string bin = Guest(ticks, Delay(AcceleratorKind.Emu));
        string snap = Path.Combine(_dir, "back.snap");
        using var vm = VmBuilder.Build(Config(bin, AcceleratorKind.Emu, "a.txt"));
        vm.Start();
        CountingGuest.WaitForLines(() => Read("a.txt"), 3, TimeSpan.FromSeconds(60));
        vm.Pause();
        VmSnapshot.Save(vm, snap);
        string atSnapshot = Read("a.txt");
        vm.Resume();
        CountingGuest.WaitForLines(() => Read("a.txt"), atSnapshot.Count(c => c == '\n') + 3, TimeSpan.FromSeconds(60));
        vm.Pause();
        string later = Read("a.txt");
        VmSnapshot.Restore(vm, snap);
        vm.Resume();
        Assert.Equal(CountingGuest.ExitCode, WaitForExit(vm).ExitCode);
        // After the load the guest prints again from where the snapshot was taken.
        Assert.Equal(CountingGuest.FullOutput(ticks), atSnapshot + Read("a.txt")[later.Length..]);
    }

    [Fact]
    public void A_different_machine_is_refused_with_the_difference_named()
    {
        string bin = Guest(1000, Delay(AcceleratorKind.Emu));
        string snap = SnapshotMidRun(Config(bin, AcceleratorKind.Emu, "a.txt"), "a.txt", 1, out _);

        using (var twoCpus = VmBuilder.Build(Config(bin, AcceleratorKind.Emu, "b.txt", cpus: 2)))
            Assert.Contains("--cpus 1", Assert.Throws<StateFormatException>(() => VmSnapshot.Restore(twoCpus, snap)).Message);
        using (var moreRam = VmBuilder.Build(Config(bin, AcceleratorKind.Emu, "b.txt", memory: 128UL << 20)))
            Assert.Contains("--memory 64M", Assert.Throws<StateFormatException>(() => VmSnapshot.Restore(moreRam, snap)).Message);
        using (var started = VmBuilder.Build(Config(bin, AcceleratorKind.Emu, "b.txt")))
        {
            started.Start();
            Assert.Contains("paused or has not started", Assert.ThrowsAny<Core.VmmException>(() => VmSnapshot.Restore(started, snap)).Message);
        }
    }

    [KvmFact]
    public void A_snapshot_from_the_other_accelerator_is_refused_with_the_difference_named()
    {
        string bin = Guest(1000, Delay(AcceleratorKind.Emu));
        string snap = SnapshotMidRun(Config(bin, AcceleratorKind.Emu, "a.txt"), "a.txt", 1, out _);
        using var kvm = VmBuilder.Build(Config(bin, AcceleratorKind.Kvm, "b.txt"));
        Assert.Contains("--accel emu", Assert.Throws<StateFormatException>(() => VmSnapshot.Restore(kvm, snap)).Message);
    }

    [Fact]
    public void A_flipped_bit_in_saved_RAM_is_refused_naming_the_page()
    {
        string bin = Guest(1000, Delay(AcceleratorKind.Emu));
        string snap = SnapshotMidRun(Config(bin, AcceleratorKind.Emu, "a.txt"), "a.txt", 1, out _);
        var header = VmSnapshot.ReadHeader(snap);
        Assert.Equal(2, SnapshotFormat.Version);
        Assert.NotEqual(0, header.ChecksumOffset);
        // The guest's code page (loaded at 0x1000) is stored, not a hole: flip one bit of it in the file.
        long at = header.Regions[0].FileOffset + 0x1000 + 17;
        using (var f = new FileStream(snap, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = at;
            int b = f.ReadByte();
            f.Position = at;
            f.WriteByte((byte)(b ^ 0x04));
        }
        foreach (bool map in new[] { true, false })
        {
            using var vm = VmBuilder.Build(Config(bin, AcceleratorKind.Emu, "b.txt"));
            var e = Assert.Throws<StateFormatException>(() => VmSnapshot.Restore(vm, snap, map));
            Assert.Contains("RAM page at guest address 0x1000", e.Message);
            Assert.Equal(VmState.Created, vm.State);
        }
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(0x7fff_ffe0)] // 16 + n + 32 wraps negative: the fuzzer's finding (an ArgumentOutOfRangeException)
    [InlineData(4096 - 48 + 1)]
    public void A_header_payload_length_past_the_page_is_refused_with_a_clear_error(int length)
    {
        var page = new byte[SnapshotFormat.HeaderSize];
        SnapshotFormat.Magic.CopyTo(page);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(page.AsSpan(8), SnapshotFormat.Version);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(page.AsSpan(12), length);
        var e = Assert.Throws<StateFormatException>(() => SnapshotFormat.Decode(page, 1L << 30, "s.snap"));
        Assert.Equal($"snapshot 's.snap' has a corrupt header (payload length {length})", e.Message);
    }

    [Fact]
    public void Corrupt_and_truncated_snapshots_are_refused_with_a_clear_error()
    {
        string bin = Guest(1000, Delay(AcceleratorKind.Emu));
        string snap = SnapshotMidRun(Config(bin, AcceleratorKind.Emu, "a.txt"), "a.txt", 1, out _);
        byte[] good = File.ReadAllBytes(snap);
        var header = VmSnapshot.ReadHeader(snap);
        Assert.Equal("emu", header.Accelerator);
        Assert.Equal("mid-run", header.Tag);

        string Fails(byte[] content)
        {
            string bad = Path.Combine(_dir, "bad.snap");
            File.WriteAllBytes(bad, content);
            using var vm = VmBuilder.Build(Config(bin, AcceleratorKind.Emu, "b.txt"));
            var e = Assert.ThrowsAny<Core.VmmException>(() => VmSnapshot.Restore(vm, bad));
            Assert.Equal(VmState.Created, vm.State);
            return e.Message;
        }

        Assert.Contains("not a SharpVmm snapshot", Fails([.. "hello world, not a snapshot"u8.ToArray(), .. new byte[5000]]));
        Assert.Contains("truncated", Fails(good[..100]));
        Assert.Contains("truncated", Fails(good[..(int)(header.StateOffset + header.StateLength / 2)]));
        Assert.Contains("truncated", Fails(good[..(good.Length - 4096)]));
        var headerFlip = (byte[])good.Clone();
        headerFlip[40] ^= 0x01;
        Assert.Contains("checksum", Fails(headerFlip));
        var stateFlip = (byte[])good.Clone();
        stateFlip[header.StateOffset + header.StateLength / 2] ^= 0x80;
        Assert.Contains("checksum", Fails(stateFlip));
        Assert.IsType<SnapshotException>(Assert.ThrowsAny<Core.VmmException>(() => VmSnapshot.ReadHeader(Path.Combine(_dir, "missing.snap"))));
    }

    /// <summary>Waits for a started VM to end; one that runs away fails the test.</summary>
    private static Lifecycle.VmExitResult WaitForExit(VirtualMachine vm, int timeoutSeconds = 60)
    {
        if (!vm.Exited.Wait(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            vm.Stop();
            Assert.Fail($"guest did not finish within {timeoutSeconds} s");
        }
        return vm.Exited.Result;
    }
}

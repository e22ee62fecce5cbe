using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using Iced.Intel;
using SharpVmm.Boot.Flat;
using SharpVmm.Machine.Config;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Machine.Migration;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Machine.Tests.Migration;

/// <summary>
/// Live migration between two VMs in this process over loopback TCP, with a guest that counts in RAM and keeps
/// dirtying a 32 KiB buffer: the target's RAM must equal the paused source's byte for byte, and it must count on.
/// </summary>
public sealed class LiveMigrationTests : IDisposable
{
    private const ulong CounterAt = 0x18000; // DS = 0x1000, offset 0x8000
    private const ulong Memory = 16UL << 20;
    private readonly GuestHarness _source = new(), _target = new();

    public void Dispose()
    {
        _source.Dispose();
        _target.Dispose();
    }

    /// <summary>Real mode: counts in a dword, writes the count into a buffer of 8 pages, and prints a dot now and then.</summary>
    private static byte[] CountingGuest()
    {
        var a = new Assembler(16);
        var top = a.CreateLabel();
        var print = a.CreateLabel();
        a.mov(ax, 0x1000);
        a.mov(ds, ax);
        a.Label(ref top);
        a.add(__dword_ptr[0x8000], 1);
        a.mov(eax, __dword_ptr[0x8000]);
        a.mov(bx, ax);
        a.shl(bx, 4);
        a.and(bx, 0x7FF0);
        a.mov(__dword_ptr[bx], eax);
        a.test(eax, 0x3FFF);
        a.jz(print);
        a.jmp(top);
        a.Label(ref print);
        a.mov(dx, 0x3F8);
        a.mov(al, (byte)'.');
        a.@out(dx, al);
        a.jmp(top);
        return GuestHarness.Assemble(a, EntryMode.Real, 0x1000);
    }

    private static bool Within(Task task, int seconds) => task.Wait(TimeSpan.FromSeconds(seconds));

    private static uint Counter(VirtualMachine vm) => vm.Memory.Read<uint>(CounterAt);

    private static void WaitUntil(Func<bool> condition, int seconds, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed.TotalSeconds > seconds) Assert.Fail($"timed out after {seconds} s waiting for {what}");
            Thread.Sleep(10);
        }
    }

    private (VirtualMachine Source, VirtualMachine Target) Pair(AcceleratorKind accel, ulong targetMemory = Memory)
    {
        var image = CountingGuest();
        var source = _source.Build(image, EntryMode.Real, accel: accel, memory: Memory);
        var target = _target.Build(image, EntryMode.Real, accel: accel, memory: targetMemory);
        return (source, target);
    }

    [Fact]
    public void On_emu_a_counting_guest_moves_with_identical_RAM_and_counts_on() => MovesAndCountsOn(AcceleratorKind.Emu);

    /// <summary>On KVM here the dirty log is unreliable (PVM): all RAM is copied with the guest paused, and the stats say so.</summary>
    [KvmFact]
    public void On_kvm_a_counting_guest_moves_with_identical_RAM_and_counts_on() => MovesAndCountsOn(AcceleratorKind.Kvm);

    private void MovesAndCountsOn(AcceleratorKind accel)
    {
        var (src, dst) = Pair(accel);
        using var _1 = src;
        using var _2 = dst;
        src.Start();
        WaitUntil(() => Counter(src) > 20_000, 60, "the source guest to count");

        var incoming = new MigrationManager(dst);
        incoming.ExpectIncoming();
        Assert.Equal("inmigrate", incoming.RunStateOverride);
        using var target = incoming.ListenIncoming("tcp:127.0.0.1:0");
        var receive = Task.Run(() => incoming.ReceiveIncoming(target));

        var outgoing = new MigrationManager(src);
        var events = new ConcurrentQueue<MigrationStatus>();
        outgoing.StatusChanged += events.Enqueue;
        var job = outgoing.StartOutgoing($"tcp:127.0.0.1:{target.LocalEndPoint!.Port}");
        Assert.True(Within(job.Completion, 120), "the migration did not end within 120 s");
        var stats = job.Stats;
        Assert.True(stats.Status == MigrationStatus.Completed, $"{stats.Status}: {stats.Error}");
        Assert.True(Within(receive, 30), "the target did not finish receiving");
        Assert.Equal(new[] { MigrationStatus.Setup, MigrationStatus.Active, MigrationStatus.Device, MigrationStatus.Completed }, events.ToArray());

        // The source stays paused for good (QEMU's postmigrate); the target has not run yet: both are frozen.
        Assert.Equal(VmState.Paused, src.State);
        Assert.Equal("postmigrate", outgoing.RunStateOverride);
        Assert.Equal(VmState.Created, dst.State);
        foreach (var region in src.Memory.Regions)
        {
            var a = src.Memory.GetReadOnlySpan(region.GuestBase, (int)region.Size);
            var b = dst.Memory.GetReadOnlySpan(region.GuestBase, (int)region.Size);
            int diff = a.CommonPrefixLength(b);
            Assert.True(diff == a.Length, $"RAM differs at 0x{region.GuestBase + (ulong)diff:x}");
        }
        var ss = src.GetVcpuState(0);
        var ts = dst.GetVcpuState(0);
        Assert.Equal(ss.Rip, ts.Rip);
        Assert.Equal(ss.Gprs, ts.Gprs);
        Assert.Equal(ss.Ds.Base, ts.Ds.Base);

        Assert.Equal((long)Memory, stats.Total);
        Assert.True(stats.Duplicate > 3000, $"{stats.Duplicate} zero pages"); // most of 16 MiB is zero
        Assert.True(stats.Normal >= 9, $"{stats.Normal} pages"); // code + buffer + counter
        Assert.True(stats.Transferred < 2 << 20, $"{stats.Transferred} bytes: zero pages must go as markers");
        Assert.NotNull(stats.DowntimeMs);
        Assert.True(stats.Rounds >= 1);
        Assert.Equal(MigrationStatus.Completed, target.Status);

        uint at = Counter(dst);
        dst.Start();
        WaitUntil(() => Counter(dst) > at + 20_000, 60, "the target guest to count on");
        Assert.Equal(VmState.Running, dst.State);
        Assert.Equal(at, Counter(src)); // the source stays where it stopped
        Assert.Null(incoming.RunStateOverride);
    }

    [Fact]
    public void A_cancelled_migration_leaves_the_source_running_and_the_target_refuses_the_cut_stream()
    {
        var (src, dst) = Pair(AcceleratorKind.Emu);
        using var _1 = src;
        using var _2 = dst;
        src.Start();
        var incoming = new MigrationManager(dst);
        using var target = incoming.ListenIncoming("tcp:127.0.0.1:0");
        var receive = Task.Run(() => incoming.ReceiveIncoming(target));
        // 32 KiB/s: the first round (about 300 KB even with zero pages as markers) takes seconds.
        var outgoing = new MigrationManager(src) { Parameters = new MigrationParameters { MaxBandwidth = 32 << 10 } };
        var job = outgoing.StartOutgoing($"tcp:127.0.0.1:{target.LocalEndPoint!.Port}");
        WaitUntil(() => job.Stats.Transferred > 40_000, 60, "the migration to get going");
        Assert.Equal(MigrationStatus.Active, job.Status);
        outgoing.CancelOutgoing();
        Assert.True(Within(job.Completion, 30));
        Assert.Equal(MigrationStatus.Cancelled, job.Status);
        Assert.Equal(VmState.Running, src.State);
        uint c = Counter(src);
        WaitUntil(() => Counter(src) > c + 10_000, 60, "the source to count on after the cancel");
        Assert.Null(outgoing.RunStateOverride);

        var ex = Assert.Throws<AggregateException>(() => Within(receive, 30));
        Assert.Contains("truncated", Assert.IsType<MigrationException>(ex.InnerException).Message);
        Assert.Equal(VmState.Created, dst.State);
        Assert.Equal(MigrationStatus.Failed, target.Status);
    }

    [Fact]
    public void A_dropped_connection_fails_the_migration_and_the_source_runs_on()
    {
        var (src, _) = Pair(AcceleratorKind.Emu);
        using var _1 = src;
        src.Start();
        // A "target" that takes some of the stream and then dies.
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var dying = Task.Run(() =>
        {
            using var c = listener.AcceptTcpClient();
            var buf = new byte[4096];
            int total = 0;
            using var s = c.GetStream();
            while (total < 20_000) total += s.Read(buf);
            c.Client.LingerState = new LingerOption(true, 0); // reset, as a killed process's socket
        });
        var outgoing = new MigrationManager(src) { Parameters = new MigrationParameters { MaxBandwidth = 32 << 10 } };
        var job = outgoing.StartOutgoing($"tcp:127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}");
        Assert.True(Within(dying, 60));
        Assert.True(Within(job.Completion, 60));
        Assert.Equal(MigrationStatus.Failed, job.Status);
        Assert.Contains("connection", job.Stats.Error);
        Assert.Equal(VmState.Running, src.State);
        uint c = Counter(src);
        WaitUntil(() => Counter(src) > c + 10_000, 60, "the source to count on after the failure");
    }

    [Fact]
    public void A_target_built_differently_refuses_and_the_source_reports_why()
    {
        var (src, dst) = Pair(AcceleratorKind.Emu, targetMemory: 8UL << 20);
        using var _1 = src;
        using var _2 = dst;
        src.Start();
        var incoming = new MigrationManager(dst);
        using var target = incoming.ListenIncoming("tcp:127.0.0.1:0");
        var receive = Task.Run(() => incoming.ReceiveIncoming(target));
        var job = new MigrationManager(src).StartOutgoing($"tcp:127.0.0.1:{target.LocalEndPoint!.Port}");
        Assert.True(Within(job.Completion, 60));
        Assert.Equal(MigrationStatus.Failed, job.Status);
        Assert.Contains("refused", job.Stats.Error);
        Assert.Contains("--memory", job.Stats.Error);
        Assert.Equal(VmState.Running, src.State);
        var ex = Assert.Throws<AggregateException>(() => Within(receive, 30));
        Assert.Contains("--memory", ex.InnerException!.Message);
        Assert.Equal(VmState.Created, dst.State);
    }

    [Fact]
    public void A_corrupt_record_is_refused_by_the_target_before_the_guest_starts()
    {
        var (src, dst) = Pair(AcceleratorKind.Emu);
        using var _1 = src;
        using var _2 = dst;
        var incoming = new MigrationManager(dst);
        using var target = incoming.ListenIncoming("tcp:127.0.0.1:0");
        var receive = Task.Run(() => incoming.ReceiveIncoming(target));
        using var client = new TcpClient("127.0.0.1", target.LocalEndPoint!.Port);
        using var net = client.GetStream();
        var ms = new MemoryStream();
        using (var w = new MigrationStreamWriter(ms))
        {
            w.WriteHeader(MigrationHeader.Describe(src));
            w.WritePages(0x2000, new byte[4096]);
        }
        var bytes = ms.ToArray();
        bytes[^100] ^= 0xFF; // inside the page data
        net.Write(bytes);
        var ack = MigrationAck.ReadFrom(net);
        Assert.False(ack.Accepted);
        Assert.Contains("checksum mismatch", ack.Message);
        var ex = Assert.Throws<AggregateException>(() => Within(receive, 30));
        Assert.Contains("corrupt", ex.InnerException!.Message);
        Assert.Equal(VmState.Created, dst.State);
        Assert.Equal(0u, dst.Memory.Read<uint>(0x2000 + 4096 - 96)); // nothing from the bad record reached RAM
    }
}

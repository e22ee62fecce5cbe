using SharpVmm.Core.Cpu;
using SharpVmm.Kvm.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Kvm.Tests;

/// <summary>Kicks, shutdowns and several vCPUs on several threads.</summary>
public sealed class RunControlTests
{
    private static VcpuExit RunOnThread(KvmVcpu vcpu, Action<KvmVcpu> whileRunning, TimeSpan timeout)
    {
        VcpuExit exit = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try { exit = vcpu.Run(); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true };
        thread.Start();
        whileRunning(vcpu);
        if (!thread.Join(timeout))
        {
            // Do not leave a vCPU thread spinning past the test: kick until it leaves.
            for (int i = 0; i < 50 && !thread.Join(100); i++) vcpu.Kick();
            Assert.Fail($"vCPU did not return within {timeout}");
        }
        if (error is not null) throw new InvalidOperationException("vCPU thread failed", error);
        return exit;
    }

    [KvmFact]
    public void Kick_ends_a_spinning_guest_with_Kicked()
    {
        using var g = new KvmTestGuest();
        g.Load(16, a =>
        {
            var spin = a.CreateLabel();
            a.mov(al, 1);
            a.@out(0x80, al);
            a.Label(ref spin);
            a.jmp(spin);
        });
        using var vcpu = g.RealModeVcpu();
        var started = new ManualResetEventSlim();
        g.Bus.OnPioWrite = (port, _) => { if (port == 0x80) started.Set(); };

        var exit = RunOnThread(vcpu, v =>
        {
            Assert.True(started.Wait(TimeSpan.FromSeconds(10)), "guest never reached its loop");
            Thread.Sleep(100);
            v.Kick();
        }, TimeSpan.FromSeconds(10));

        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        // The guest is parked inside its loop, and can be resumed and kicked again.
        long rip = (long)vcpu.GetState().Rip;
        Assert.InRange(rip, (long)KvmTestGuest.CodeAddress + 4, (long)KvmTestGuest.CodeAddress + 6);
        var again = RunOnThread(vcpu, v => { Thread.Sleep(50); v.Kick(); }, TimeSpan.FromSeconds(10));
        Assert.Equal(VcpuExitReason.Kicked, again.Reason);
    }

    [KvmFact]
    public void A_kick_before_Run_is_remembered_for_the_next_Run_only()
    {
        using var g = new KvmTestGuest();
        g.Load(16, a =>
        {
            a.mov(al, 7);
            a.@out(0x80, al);
            a.hlt();
        });
        using var vcpu = g.RealModeVcpu();

        vcpu.Kick();
        Assert.Equal(VcpuExitReason.Kicked, vcpu.Run().Reason);
        Assert.Empty(g.Bus.Snapshot());

        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);
        Assert.Single(g.Bus.Snapshot());
    }

    [KvmFact]
    public void A_kick_from_the_bus_during_an_in_completes_the_instruction_first()
    {
        using var g = new KvmTestGuest();
        g.Bus.QueuePioRead(0x71, 0x99);
        g.Load(16, a =>
        {
            a.mov(al, 0);
            a.@out(0x70, al);
            a.@in(al, 0x71);
            a.mov(bl, al);
            a.hlt();
        });
        using var vcpu = g.RealModeVcpu();
        g.Bus.OnPioWrite = (port, _) => { if (port == 0x70) vcpu.Kick(); };

        Assert.Equal(VcpuExitReason.Kicked, vcpu.Run().Reason);
        Assert.Equal(VcpuExitReason.Halt, vcpu.Run().Reason);
        Assert.Equal(0x99UL, vcpu.GetState()[Gpr.Rbx] & 0xFF);
    }

    [KvmFact]
    public void A_triple_fault_returns_Shutdown()
    {
        using var g = new KvmTestGuest();
        g.Load(32, a =>
        {
            // With an empty IDT every exception faults again: #UD, #GP, #DF, then the triple fault.
            a.ud2();
            a.hlt();
        });
        using var vcpu = g.ProtectedModeVcpu();
        var s = vcpu.GetState();
        s.Idt = new DescriptorTable { Base = 0, Limit = 0 };
        vcpu.SetState(s);

        var exit = vcpu.Run();
        Assert.True(exit.Reason == VcpuExitReason.Shutdown, exit.ToString());
    }

    [KvmFact]
    public void Two_vcpus_run_in_two_threads_with_their_own_code_and_state()
    {
        const int Rounds = 200;
        using var g = new KvmTestGuest(new KvmOptions { VcpuCount = 2 });
        for (int i = 0; i < 2; i++)
        {
            int index = i;
            g.Load(16, a =>
            {
                var loop = a.CreateLabel();
                a.mov(cx, Rounds);
                a.mov(dx, (ushort)(0x500 + index));
                a.Label(ref loop);
                a.mov(ax, cx);
                a.@out(dx, ax);
                a.dec(cx);
                a.jnz(loop);
                a.hlt();
            }, 0x1000 + (ulong)index * 0x1000);
        }
        using var v0 = g.RealModeVcpu(0, 0x1000);
        using var v1 = g.RealModeVcpu(1, 0x2000);

        var exits = new VcpuExit[2];
        var threads = new[] { v0, v1 }.Select((v, i) => new Thread(() => exits[i] = v.Run())).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(30)));

        Assert.All(exits, e => Assert.Equal(VcpuExitReason.Halt, e.Reason));
        var io = g.Bus.Snapshot();
        for (int i = 0; i < 2; i++)
        {
            var mine = io.Where(x => x.Address == 0x500UL + (ulong)i).Select(x => x.Value).ToArray();
            Assert.Equal(Enumerable.Range(1, Rounds).Reverse().Select(x => (ulong)x).ToArray(), mine);
        }
        Assert.Equal(0x1000UL, v0.GetState().Rip & ~0xFFFUL);
        Assert.Equal(0x2000UL, v1.GetState().Rip & ~0xFFFUL);
        Assert.Equal(2 * Rounds, io.Count);
        Assert.True(v0.ExitCount >= Rounds && v1.ExitCount >= Rounds);
    }

    [KvmFact]
    public void With_irqchip_a_kick_ends_a_hlt_that_blocks_in_the_kernel()
    {
        using var g = new KvmTestGuest(new KvmOptions { IrqChip = true });
        g.Load(16, a =>
        {
            a.cli();
            a.mov(al, 1);
            a.@out(0x80, al);
            a.hlt();
        });
        using var vcpu = g.RealModeVcpu();
        var started = new ManualResetEventSlim();
        g.Bus.OnPioWrite = (_, _) => started.Set();

        var exit = RunOnThread(vcpu, v =>
        {
            Assert.True(started.Wait(TimeSpan.FromSeconds(10)));
            Thread.Sleep(100);
            v.Kick();
        }, TimeSpan.FromSeconds(10));

        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        Assert.True(vcpu.GetState().Events.Halted);
    }

    [KvmFact]
    public void Every_kick_ends_exactly_one_Run_even_when_it_lands_between_exits()
    {
        const int Kicks = 40;
        using var g = new KvmTestGuest();
        g.Load(16, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.@out(0x80, al);
            a.jmp(loop);
        });
        using var vcpu = g.RealModeVcpu();
        var returned = new SemaphoreSlim(0);
        var go = new SemaphoreSlim(0);
        var exits = new List<VcpuExit>();
        bool stop = false;
        var thread = new Thread(() =>
        {
            while (true)
            {
                var e = vcpu.Run();
                lock (exits) exits.Add(e);
                returned.Release();
                if (Volatile.Read(ref stop)) return;
                go.Wait();
            }
        }) { IsBackground = true };
        thread.Start();
        var random = new Random(7);
        for (int i = 0; i < Kicks; i++)
        {
            // Waiting doubles as the pause between kicks: a Run that ends now ended without a kick (a leftover one).
            Assert.False(returned.Wait(random.Next(1, 6)), $"Run {i} returned before kick {i}");
            vcpu.Kick();
            Assert.True(returned.Wait(TimeSpan.FromSeconds(10)), $"kick {i} was lost");
            go.Release();
        }
        Volatile.Write(ref stop, true);
        vcpu.Kick();
        Assert.True(thread.Join(TimeSpan.FromSeconds(10)));
        Assert.Equal(Kicks + 1, exits.Count);
        Assert.All(exits, e => Assert.Equal(VcpuExitReason.Kicked, e.Reason));
        Assert.NotEmpty(g.Bus.Snapshot());
    }

    [KvmFact]
    public void Disposing_a_running_vcpu_is_refused_and_a_kick_after_dispose_is_harmless()
    {
        using var g = new KvmTestGuest();
        g.Load(16, a =>
        {
            var spin = a.CreateLabel();
            a.mov(al, 1);
            a.@out(0x80, al);
            a.Label(ref spin);
            a.jmp(spin);
        });
        var vcpu = g.RealModeVcpu();
        var started = new ManualResetEventSlim();
        g.Bus.OnPioWrite = (_, _) => started.Set();

        var exit = RunOnThread(vcpu, v =>
        {
            Assert.True(started.Wait(TimeSpan.FromSeconds(10)));
            Assert.Throws<InvalidOperationException>(v.Dispose);
            v.Kick();
        }, TimeSpan.FromSeconds(10));

        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        vcpu.Dispose();
        vcpu.Kick();
        Assert.Throws<ObjectDisposedException>(() => vcpu.Run());
        Assert.Throws<KvmException>(() => g.Accelerator.CreateVcpu(0)); // KVM keeps the vCPU until the VM goes
    }

    [KvmFact]
    public void With_irqchip_an_application_processor_waits_for_sipi_even_after_SetState()
    {
        using var g = new KvmTestGuest(new KvmOptions { IrqChip = true, VcpuCount = 2 });
        g.Load(16, a =>
        {
            a.mov(al, 1);
            a.@out(0x80, al);
            a.hlt();
        });
        using var bsp = g.RealModeVcpu(0);
        using var ap = g.RealModeVcpu(1);

        var exit = RunOnThread(ap, v => { Thread.Sleep(200); v.Kick(); }, TimeSpan.FromSeconds(10));

        Assert.Equal(VcpuExitReason.Kicked, exit.Reason);
        Assert.Empty(g.Bus.Snapshot());
        Assert.False(ap.GetState().Events.Halted);
    }
}

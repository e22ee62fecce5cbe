using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVmm.Interop;
using SharpVmm.Kvm.Interop;
using SharpVmm.Kvm.Tests.Support;

namespace SharpVmm.Kvm.Tests;

/// <summary>
/// Every struct size, field offset, ioctl number and constant the binding declares, against what the machine's gcc
/// computes from linux/kvm.h (Probe/kvm_layout.c). Every line the probe prints must have a C# counterpart here.
/// </summary>
public sealed class LayoutTests
{
    private static long Off<T>(string field) => Marshal.OffsetOf<T>(field).ToInt64();
    private static long Size<T>() => Unsafe.SizeOf<T>();

    private static Dictionary<string, long> Expected()
    {
        long union = Off<KvmRun>(nameof(KvmRun.Io));
        var e = new Dictionary<string, long>
        {
            ["sizeof kvm_run"] = Size<KvmRun>(),
            ["offsetof kvm_run.request_interrupt_window"] = Off<KvmRun>(nameof(KvmRun.RequestInterruptWindow)),
            ["offsetof kvm_run.immediate_exit"] = Off<KvmRun>(nameof(KvmRun.ImmediateExit)),
            ["offsetof kvm_run.exit_reason"] = Off<KvmRun>(nameof(KvmRun.ExitReason)),
            ["offsetof kvm_run.ready_for_interrupt_injection"] = Off<KvmRun>(nameof(KvmRun.ReadyForInterruptInjection)),
            ["offsetof kvm_run.if_flag"] = Off<KvmRun>(nameof(KvmRun.IfFlag)),
            ["offsetof kvm_run.flags"] = Off<KvmRun>(nameof(KvmRun.Flags)),
            ["offsetof kvm_run.cr8"] = Off<KvmRun>(nameof(KvmRun.Cr8)),
            ["offsetof kvm_run.apic_base"] = Off<KvmRun>(nameof(KvmRun.ApicBase)),
            ["offsetof kvm_run.io"] = union,
            ["offsetof kvm_run.mmio"] = Off<KvmRun>(nameof(KvmRun.Mmio)),
            ["offsetof kvm_run.fail_entry"] = Off<KvmRun>(nameof(KvmRun.FailEntry)),
            ["offsetof kvm_run.internal"] = Off<KvmRun>(nameof(KvmRun.Internal)),
            ["offsetof kvm_run.system_event"] = Off<KvmRun>(nameof(KvmRun.SystemEvent)),
            ["offsetof kvm_run.kvm_valid_regs"] = Off<KvmRun>(nameof(KvmRun.KvmValidRegs)),
            ["offsetof kvm_run.kvm_dirty_regs"] = Off<KvmRun>(nameof(KvmRun.KvmDirtyRegs)),
            ["offsetof kvm_run.s"] = Off<KvmRun>(nameof(KvmRun.SyncRegs)),
            ["offsetof kvm_run.io.direction"] = union + Off<KvmRunIo>(nameof(KvmRunIo.Direction)),
            ["offsetof kvm_run.io.size"] = union + Off<KvmRunIo>(nameof(KvmRunIo.Size)),
            ["offsetof kvm_run.io.port"] = union + Off<KvmRunIo>(nameof(KvmRunIo.Port)),
            ["offsetof kvm_run.io.count"] = union + Off<KvmRunIo>(nameof(KvmRunIo.Count)),
            ["offsetof kvm_run.io.data_offset"] = union + Off<KvmRunIo>(nameof(KvmRunIo.DataOffset)),
            ["offsetof kvm_run.mmio.phys_addr"] = union + Off<KvmRunMmio>(nameof(KvmRunMmio.PhysAddr)),
            ["offsetof kvm_run.mmio.data"] = union + Off<KvmRunMmio>(nameof(KvmRunMmio.Data)),
            ["offsetof kvm_run.mmio.len"] = union + Off<KvmRunMmio>(nameof(KvmRunMmio.Len)),
            ["offsetof kvm_run.mmio.is_write"] = union + Off<KvmRunMmio>(nameof(KvmRunMmio.IsWrite)),
            ["offsetof kvm_run.fail_entry.hardware_entry_failure_reason"] = union + Off<KvmRunFailEntry>(nameof(KvmRunFailEntry.HardwareEntryFailureReason)),
            ["offsetof kvm_run.fail_entry.cpu"] = union + Off<KvmRunFailEntry>(nameof(KvmRunFailEntry.Cpu)),
            ["offsetof kvm_run.internal.suberror"] = union + Off<KvmRunInternal>(nameof(KvmRunInternal.Suberror)),
            ["offsetof kvm_run.internal.ndata"] = union + Off<KvmRunInternal>(nameof(KvmRunInternal.NData)),
            ["offsetof kvm_run.internal.data"] = union + Off<KvmRunInternal>(nameof(KvmRunInternal.Data)),
            ["offsetof kvm_run.system_event.type"] = union + Off<KvmRunSystemEvent>(nameof(KvmRunSystemEvent.Type)),
            ["offsetof kvm_run.system_event.ndata"] = union + Off<KvmRunSystemEvent>(nameof(KvmRunSystemEvent.NData)),
            ["offsetof kvm_run.system_event.data"] = union + Off<KvmRunSystemEvent>(nameof(KvmRunSystemEvent.Data)),

            ["sizeof kvm_regs"] = Size<KvmRegs>(),
            ["sizeof kvm_segment"] = Size<KvmSegment>(),
            ["sizeof kvm_dtable"] = Size<KvmDtable>(),
            ["offsetof kvm_dtable.base"] = Off<KvmDtable>(nameof(KvmDtable.Base)),
            ["offsetof kvm_dtable.limit"] = Off<KvmDtable>(nameof(KvmDtable.Limit)),
            ["sizeof kvm_sregs"] = Size<KvmSregs>(),
            ["offsetof kvm_sregs.ldt"] = Off<KvmSregs>(nameof(KvmSregs.Ldt)),
            ["offsetof kvm_sregs.interrupt_bitmap"] = Off<KvmSregs>(nameof(KvmSregs.InterruptBitmap)),
            ["sizeof kvm_fpu"] = Size<KvmFpu>(),
            ["offsetof kvm_fpu.fpr"] = Off<KvmFpu>(nameof(KvmFpu.Fpr)),
            ["offsetof kvm_fpu.ftwx"] = Off<KvmFpu>(nameof(KvmFpu.Ftwx)),
            ["offsetof kvm_fpu.last_opcode"] = Off<KvmFpu>(nameof(KvmFpu.LastOpcode)),
            ["offsetof kvm_fpu.last_ip"] = Off<KvmFpu>(nameof(KvmFpu.LastIp)),
            ["offsetof kvm_fpu.last_dp"] = Off<KvmFpu>(nameof(KvmFpu.LastDp)),
            ["sizeof kvm_msrs"] = Size<KvmMsrs>(),
            ["offsetof kvm_msrs.nmsrs"] = Off<KvmMsrs>(nameof(KvmMsrs.NMsrs)),
            ["offsetof kvm_msrs.entries"] = Size<KvmMsrs>(),
            ["sizeof kvm_msr_entry"] = Size<KvmMsrEntry>(),
            ["sizeof kvm_msr_list"] = Size<KvmMsrList>(),
            ["offsetof kvm_msr_list.nmsrs"] = Off<KvmMsrList>(nameof(KvmMsrList.NMsrs)),
            ["offsetof kvm_msr_list.indices"] = Size<KvmMsrList>(),
            ["sizeof kvm_lapic_state"] = Size<KvmLapicState>(),
            ["offsetof kvm_lapic_state.regs"] = Off<KvmLapicState>(nameof(KvmLapicState.Regs)),
            ["sizeof kvm_vcpu_events"] = Size<KvmVcpuEvents>(),
            ["offsetof kvm_vcpu_events.smi"] = Off<KvmVcpuEvents>(nameof(KvmVcpuEvents.SmiSmm)),
            ["offsetof kvm_vcpu_events.exception_has_payload"] = Off<KvmVcpuEvents>(nameof(KvmVcpuEvents.ExceptionHasPayload)),
            ["offsetof kvm_vcpu_events.exception_payload"] = Off<KvmVcpuEvents>(nameof(KvmVcpuEvents.ExceptionPayload)),
            ["sizeof kvm_mp_state"] = Size<KvmMpState>(),
            ["offsetof kvm_mp_state.mp_state"] = Off<KvmMpState>(nameof(KvmMpState.MpState)),
            ["sizeof kvm_cpuid2"] = Size<KvmCpuid2>(),
            ["offsetof kvm_cpuid2.nent"] = Off<KvmCpuid2>(nameof(KvmCpuid2.NEnt)),
            ["offsetof kvm_cpuid2.entries"] = Size<KvmCpuid2>(),
            ["sizeof kvm_cpuid_entry2"] = Size<KvmCpuidEntry2>(),
            ["sizeof kvm_userspace_memory_region"] = Size<KvmUserspaceMemoryRegion>(),
            ["offsetof kvm_userspace_memory_region.guest_phys_addr"] = Off<KvmUserspaceMemoryRegion>(nameof(KvmUserspaceMemoryRegion.GuestPhysAddr)),
            ["offsetof kvm_userspace_memory_region.memory_size"] = Off<KvmUserspaceMemoryRegion>(nameof(KvmUserspaceMemoryRegion.MemorySize)),
            ["offsetof kvm_userspace_memory_region.userspace_addr"] = Off<KvmUserspaceMemoryRegion>(nameof(KvmUserspaceMemoryRegion.UserspaceAddr)),
            ["sizeof kvm_dirty_log"] = Size<KvmDirtyLog>(),
            ["offsetof kvm_dirty_log.dirty_bitmap"] = Off<KvmDirtyLog>(nameof(KvmDirtyLog.DirtyBitmap)),
            ["sizeof kvm_irq_level"] = Size<KvmIrqLevel>(),
            ["sizeof kvm_pit_config"] = Size<KvmPitConfig>(),
            ["sizeof kvm_irqchip"] = Size<KvmIrqchip>(),
            ["offsetof kvm_irqchip.chip"] = Off<KvmIrqchip>(nameof(KvmIrqchip.Chip)),
            ["sizeof kvm_pit_state2"] = Size<KvmPitState2>(),
            ["offsetof kvm_pit_state2.flags"] = Off<KvmPitState2>(nameof(KvmPitState2.Flags)),
            ["sizeof kvm_pit_channel_state"] = Size<KvmPitChannelState>(),
            ["offsetof kvm_pit_channel_state.mode"] = Off<KvmPitChannelState>(nameof(KvmPitChannelState.Mode)),
            ["offsetof kvm_pit_channel_state.gate"] = Off<KvmPitChannelState>(nameof(KvmPitChannelState.Gate)),
            ["offsetof kvm_pit_channel_state.count_load_time"] = Off<KvmPitChannelState>(nameof(KvmPitChannelState.CountLoadTime)),
            ["sizeof kvm_clock_data"] = Size<KvmClockData>(),
            ["offsetof kvm_clock_data.flags"] = Off<KvmClockData>(nameof(KvmClockData.Flags)),
            ["offsetof kvm_clock_data.realtime"] = Off<KvmClockData>(nameof(KvmClockData.Realtime)),
            ["offsetof kvm_clock_data.host_tsc"] = Off<KvmClockData>(nameof(KvmClockData.HostTsc)),
            ["const KVM_IRQCHIP_PIC_MASTER"] = KvmIrqchip.PicMaster,
            ["const KVM_IRQCHIP_PIC_SLAVE"] = KvmIrqchip.PicSlave,
            ["const KVM_IRQCHIP_IOAPIC"] = KvmIrqchip.IoApic,
            ["sizeof kvm_xsave"] = Size<KvmXsave>(),
            ["offsetof kvm_xsave.region"] = Off<KvmXsave>(nameof(KvmXsave.Region)),
            ["sizeof kvm_xcrs"] = Size<KvmXcrs>(),
            ["offsetof kvm_xcrs.nr_xcrs"] = Off<KvmXcrs>(nameof(KvmXcrs.NrXcrs)),
            ["offsetof kvm_xcrs.xcrs"] = Off<KvmXcrs>(nameof(KvmXcrs.XcrsRaw)),
            ["sizeof kvm_xcr"] = Size<KvmXcr>(),
            ["offsetof kvm_xcr.xcr"] = Off<KvmXcr>(nameof(KvmXcr.Xcr)),
            ["offsetof kvm_xcr.value"] = Off<KvmXcr>(nameof(KvmXcr.Value)),

            ["sizeof sigaction"] = Size<SigAction>(),
            ["offsetof sigaction.sa_handler"] = Off<SigAction>(nameof(SigAction.Handler)),
            ["offsetof sigaction.sa_mask"] = Off<SigAction>(nameof(SigAction.Mask)),
            ["offsetof sigaction.sa_flags"] = Off<SigAction>(nameof(SigAction.Flags)),
            ["const SA_RESTART"] = Libc.SaRestart,
            ["const SA_ONSTACK"] = 0x0800_0000,

            ["const KVM_MEM_LOG_DIRTY_PAGES"] = KvmUserspaceMemoryRegion.LogDirtyPages,
            ["const KVM_MEM_READONLY"] = KvmUserspaceMemoryRegion.ReadOnly,
            ["const KVM_PIT_SPEAKER_DUMMY"] = KvmPitConfig.SpeakerDummy,
            ["const KVM_EXIT_IO_IN"] = KvmRunIo.In,
            ["const KVM_EXIT_IO_OUT"] = KvmRunIo.Out,
            ["const KVM_MP_STATE_RUNNABLE"] = KvmMpState.Runnable,
            ["const KVM_MP_STATE_HALTED"] = KvmMpState.Halted,
            ["const KVM_VCPUEVENT_VALID_NMI_PENDING"] = KvmVcpuEvents.ValidNmiPending,
            ["const KVM_VCPUEVENT_VALID_SIPI_VECTOR"] = KvmVcpuEvents.ValidSipiVector,
            ["const KVM_VCPUEVENT_VALID_SHADOW"] = KvmVcpuEvents.ValidShadow,
            ["const KVM_X86_SHADOW_INT_MOV_SS"] = KvmVcpuEvents.ShadowMovSs,
            ["const KVM_X86_SHADOW_INT_STI"] = KvmVcpuEvents.ShadowSti,
            ["const KVM_INTERNAL_ERROR_EMULATION"] = KvmInternalError.Emulation,
            ["const KVM_SYSTEM_EVENT_SHUTDOWN"] = KvmSystemEventType.Shutdown,
            ["const KVM_SYSTEM_EVENT_RESET"] = KvmSystemEventType.Reset,
            ["const KVM_SYSTEM_EVENT_CRASH"] = KvmSystemEventType.Crash,
            ["const KVM_CPUID_FLAG_SIGNIFCANT_INDEX"] = KvmCpuidEntry2.FlagSignificantIndex,
        };

        // Field offsets that follow the C field name mechanically: struct.field_name -> PascalCase member.
        AddFields<KvmRegs>(e, "kvm_regs", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r15", "rip", "rflags");
        AddFields<KvmSegment>(e, "kvm_segment", "base", "limit", "selector", "type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable");
        AddFields<KvmSregs>(e, "kvm_sregs", "cs", "ds", "es", "fs", "gs", "ss", "tr", "gdt", "idt", "cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base");
        AddFields<KvmFpu>(e, "kvm_fpu", "fcw", "fsw", "xmm", "mxcsr");
        AddFields<KvmMsrEntry>(e, "kvm_msr_entry", "index", "reserved", "data");
        AddFields<KvmCpuidEntry2>(e, "kvm_cpuid_entry2", "function", "index", "flags", "eax", "ebx", "ecx", "edx");
        AddFields<KvmUserspaceMemoryRegion>(e, "kvm_userspace_memory_region", "slot", "flags");
        AddFields<KvmDirtyLog>(e, "kvm_dirty_log", "slot");
        AddFields<KvmIrqLevel>(e, "kvm_irq_level", "irq", "level");
        AddFields<KvmPitConfig>(e, "kvm_pit_config", "flags");
        AddFields<KvmXcrs>(e, "kvm_xcrs", "flags");
        foreach (var (group, names) in new[]
        {
            ("exception", new[] { "injected", "nr", "has_error_code", "pending", "error_code" }),
            ("interrupt", ["injected", "nr", "soft", "shadow"]),
            ("nmi", ["injected", "pending", "masked"]),
        })
        {
            foreach (var n in names) e[$"offsetof kvm_vcpu_events.{group}.{n}"] = Off<KvmVcpuEvents>(Pascal(group) + Pascal(n));
        }
        e["offsetof kvm_vcpu_events.sipi_vector"] = Off<KvmVcpuEvents>(nameof(KvmVcpuEvents.SipiVector));
        e["offsetof kvm_vcpu_events.flags"] = Off<KvmVcpuEvents>(nameof(KvmVcpuEvents.Flags));

        foreach (var f in typeof(KvmIoctl).GetFields())
            e["ioctl KVM_" + Snake(f.Name)] = (long)(nuint)f.GetValue(null)!;
        foreach (KvmCap cap in Enum.GetValues<KvmCap>())
            e["const KVM_CAP_" + Snake(cap.ToString())] = (long)cap;
        return e;
    }

    private static void AddFields<T>(Dictionary<string, long> e, string cName, params string[] fields)
    {
        foreach (var f in fields) e[$"offsetof {cName}.{f}"] = Off<T>(Pascal(f));
    }

    private static string Pascal(string snake) => string.Concat(snake.Split('_').Select(p => char.ToUpperInvariant(p[0]) + p[1..]));

    private static string Snake(string pascal)
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            if (i > 0 && char.IsUpper(c) && !char.IsUpper(pascal[i - 1])) sb.Append('_');
            sb.Append(char.ToUpperInvariant(c));
        }
        return sb.ToString();
    }

    [NeedsFact(Need.CCompiler)]
    public void Structs_ioctls_and_constants_match_the_kernel_headers()
    {
        string dir = Directory.CreateTempSubdirectory("kvm-layout-").FullName;
        try
        {
            string exe = Path.Combine(dir, "probe");
            string source = Path.Combine(AppContext.BaseDirectory, "Probe", "kvm_layout.c");
            ExternalTool.RunOk(HostTools.Find("gcc")!, "-O0", "-o", exe, source);
            string output = ExternalTool.RunOk(exe);

            var expected = Expected();
            var problems = new List<string>();
            var seen = new HashSet<string>();
            foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                int space = line.LastIndexOf(' ');
                string key = line[..space];
                long actual = long.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture);
                if (!expected.TryGetValue(key, out long mine)) problems.Add($"{key}: the probe prints it but the test has no C# counterpart");
                else if (mine != actual) problems.Add($"{key}: C {actual}, C# {mine}");
                seen.Add(key);
            }
            foreach (var key in expected.Keys)
                if (!seen.Contains(key)) problems.Add($"{key}: declared in C# but the probe does not print it (add it to Probe/kvm_layout.c)");
            Assert.True(problems.Count == 0, string.Join('\n', problems));
            Assert.True(seen.Count > 150, $"the probe printed only {seen.Count} values");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

/* Prints the layout of the KVM structures and the ioctl numbers as the kernel headers define them,
 * one "name value" per line, for KvmLayoutTests to compare with the C# declarations. */
#include <stddef.h>
#include <stdio.h>
#include <signal.h>
#include <linux/kvm.h>

#define S(t) printf("sizeof %s %zu\n", #t, sizeof(struct t))
#define O(t, f) printf("offsetof %s.%s %zu\n", #t, #f, offsetof(struct t, f))
#define I(n) printf("ioctl %s %lu\n", #n, (unsigned long)(n))
#define C(n) printf("const %s %lu\n", #n, (unsigned long)(n))

int main(void)
{
    S(kvm_run);
    O(kvm_run, request_interrupt_window); O(kvm_run, immediate_exit); O(kvm_run, exit_reason);
    O(kvm_run, ready_for_interrupt_injection); O(kvm_run, if_flag); O(kvm_run, flags); O(kvm_run, cr8);
    O(kvm_run, apic_base); O(kvm_run, io); O(kvm_run, mmio); O(kvm_run, fail_entry); O(kvm_run, internal);
    O(kvm_run, system_event); O(kvm_run, kvm_valid_regs); O(kvm_run, kvm_dirty_regs); O(kvm_run, s);
    O(kvm_run, io.direction); O(kvm_run, io.size); O(kvm_run, io.port); O(kvm_run, io.count); O(kvm_run, io.data_offset);
    O(kvm_run, mmio.phys_addr); O(kvm_run, mmio.data); O(kvm_run, mmio.len); O(kvm_run, mmio.is_write);
    O(kvm_run, fail_entry.hardware_entry_failure_reason); O(kvm_run, fail_entry.cpu);
    O(kvm_run, internal.suberror); O(kvm_run, internal.ndata); O(kvm_run, internal.data);
    O(kvm_run, system_event.type); O(kvm_run, system_event.ndata); O(kvm_run, system_event.data);

    S(kvm_regs); O(kvm_regs, rax); O(kvm_regs, rbx); O(kvm_regs, rcx); O(kvm_regs, rdx); O(kvm_regs, rsi);
    O(kvm_regs, rdi); O(kvm_regs, rsp); O(kvm_regs, rbp); O(kvm_regs, r8); O(kvm_regs, r15); O(kvm_regs, rip);
    O(kvm_regs, rflags);

    S(kvm_segment); O(kvm_segment, base); O(kvm_segment, limit); O(kvm_segment, selector); O(kvm_segment, type);
    O(kvm_segment, present); O(kvm_segment, dpl); O(kvm_segment, db); O(kvm_segment, s); O(kvm_segment, l);
    O(kvm_segment, g); O(kvm_segment, avl); O(kvm_segment, unusable);
    S(kvm_dtable); O(kvm_dtable, base); O(kvm_dtable, limit);
    S(kvm_sregs); O(kvm_sregs, cs); O(kvm_sregs, ds); O(kvm_sregs, es); O(kvm_sregs, fs); O(kvm_sregs, gs);
    O(kvm_sregs, ss); O(kvm_sregs, tr); O(kvm_sregs, ldt); O(kvm_sregs, gdt); O(kvm_sregs, idt); O(kvm_sregs, cr0);
    O(kvm_sregs, cr2); O(kvm_sregs, cr3); O(kvm_sregs, cr4); O(kvm_sregs, cr8); O(kvm_sregs, efer);
    O(kvm_sregs, apic_base); O(kvm_sregs, interrupt_bitmap);

    S(kvm_fpu); O(kvm_fpu, fpr); O(kvm_fpu, fcw); O(kvm_fpu, fsw); O(kvm_fpu, ftwx); O(kvm_fpu, last_opcode);
    O(kvm_fpu, last_ip); O(kvm_fpu, last_dp); O(kvm_fpu, xmm); O(kvm_fpu, mxcsr);

    S(kvm_msrs); O(kvm_msrs, nmsrs); O(kvm_msrs, entries);
    S(kvm_msr_entry); O(kvm_msr_entry, index); O(kvm_msr_entry, reserved); O(kvm_msr_entry, data);
    S(kvm_msr_list); O(kvm_msr_list, nmsrs); O(kvm_msr_list, indices);

    S(kvm_lapic_state); O(kvm_lapic_state, regs);

    S(kvm_vcpu_events); O(kvm_vcpu_events, exception.injected); O(kvm_vcpu_events, exception.nr);
    O(kvm_vcpu_events, exception.has_error_code); O(kvm_vcpu_events, exception.pending);
    O(kvm_vcpu_events, exception.error_code); O(kvm_vcpu_events, interrupt.injected); O(kvm_vcpu_events, interrupt.nr);
    O(kvm_vcpu_events, interrupt.soft); O(kvm_vcpu_events, interrupt.shadow); O(kvm_vcpu_events, nmi.injected);
    O(kvm_vcpu_events, nmi.pending); O(kvm_vcpu_events, nmi.masked); O(kvm_vcpu_events, sipi_vector);
    O(kvm_vcpu_events, flags); O(kvm_vcpu_events, smi); O(kvm_vcpu_events, exception_has_payload);
    O(kvm_vcpu_events, exception_payload);

    S(kvm_mp_state); O(kvm_mp_state, mp_state);

    S(kvm_cpuid2); O(kvm_cpuid2, nent); O(kvm_cpuid2, entries);
    S(kvm_cpuid_entry2); O(kvm_cpuid_entry2, function); O(kvm_cpuid_entry2, index); O(kvm_cpuid_entry2, flags);
    O(kvm_cpuid_entry2, eax); O(kvm_cpuid_entry2, ebx); O(kvm_cpuid_entry2, ecx); O(kvm_cpuid_entry2, edx);

    S(kvm_userspace_memory_region); O(kvm_userspace_memory_region, slot); O(kvm_userspace_memory_region, flags);
    O(kvm_userspace_memory_region, guest_phys_addr); O(kvm_userspace_memory_region, memory_size);
    O(kvm_userspace_memory_region, userspace_addr);

    S(kvm_dirty_log); O(kvm_dirty_log, slot); O(kvm_dirty_log, dirty_bitmap);
    S(kvm_irq_level); O(kvm_irq_level, irq); O(kvm_irq_level, level);
    S(kvm_pit_config); O(kvm_pit_config, flags);
    S(kvm_xsave); O(kvm_xsave, region);
    S(kvm_xcrs); O(kvm_xcrs, nr_xcrs); O(kvm_xcrs, flags); O(kvm_xcrs, xcrs);
    S(kvm_xcr); O(kvm_xcr, xcr); O(kvm_xcr, value);

    printf("sizeof sigaction %zu\n", sizeof(struct sigaction));
    printf("offsetof sigaction.sa_handler %zu\n", offsetof(struct sigaction, sa_handler));
    printf("offsetof sigaction.sa_mask %zu\n", offsetof(struct sigaction, sa_mask));
    printf("offsetof sigaction.sa_flags %zu\n", offsetof(struct sigaction, sa_flags));
    C(SA_RESTART); C(SA_ONSTACK);

    I(KVM_GET_API_VERSION); I(KVM_CREATE_VM); I(KVM_CHECK_EXTENSION); I(KVM_GET_VCPU_MMAP_SIZE);
    I(KVM_GET_SUPPORTED_CPUID); I(KVM_GET_MSR_INDEX_LIST); I(KVM_CREATE_VCPU); I(KVM_SET_USER_MEMORY_REGION);
    I(KVM_GET_DIRTY_LOG); I(KVM_SET_TSS_ADDR); I(KVM_SET_IDENTITY_MAP_ADDR); I(KVM_CREATE_IRQCHIP);
    I(KVM_CREATE_PIT2); I(KVM_IRQ_LINE); I(KVM_RUN); I(KVM_GET_REGS); I(KVM_SET_REGS); I(KVM_GET_SREGS);
    I(KVM_SET_SREGS); I(KVM_GET_FPU); I(KVM_SET_FPU); I(KVM_GET_MSRS); I(KVM_SET_MSRS); I(KVM_GET_LAPIC);
    I(KVM_SET_LAPIC); I(KVM_GET_VCPU_EVENTS); I(KVM_SET_VCPU_EVENTS); I(KVM_GET_XSAVE); I(KVM_SET_XSAVE);
    I(KVM_GET_XCRS); I(KVM_SET_XCRS); I(KVM_SET_CPUID2); I(KVM_GET_CPUID2); I(KVM_GET_MP_STATE); I(KVM_SET_MP_STATE);
    I(KVM_INTERRUPT); I(KVM_NMI);
    I(KVM_GET_IRQCHIP); I(KVM_SET_IRQCHIP); I(KVM_GET_PIT2); I(KVM_SET_PIT2); I(KVM_GET_CLOCK); I(KVM_SET_CLOCK);
    S(kvm_irqchip); O(kvm_irqchip, chip); S(kvm_pit_state2); O(kvm_pit_state2, flags); S(kvm_pit_channel_state);
    O(kvm_pit_channel_state, mode); O(kvm_pit_channel_state, gate); O(kvm_pit_channel_state, count_load_time);
    S(kvm_clock_data); O(kvm_clock_data, flags); O(kvm_clock_data, realtime); O(kvm_clock_data, host_tsc);
    C(KVM_CAP_PIT_STATE2); C(KVM_IRQCHIP_PIC_MASTER); C(KVM_IRQCHIP_PIC_SLAVE); C(KVM_IRQCHIP_IOAPIC);

    C(KVM_CAP_IRQCHIP); C(KVM_CAP_PIT2); C(KVM_CAP_USER_MEMORY); C(KVM_CAP_SET_TSS_ADDR);
    C(KVM_CAP_SET_IDENTITY_MAP_ADDR); C(KVM_CAP_EXT_CPUID); C(KVM_CAP_NR_VCPUS); C(KVM_CAP_MAX_VCPUS);
    C(KVM_CAP_NR_MEMSLOTS); C(KVM_CAP_MP_STATE); C(KVM_CAP_VCPU_EVENTS); C(KVM_CAP_XSAVE); C(KVM_CAP_XCRS);
    C(KVM_CAP_READONLY_MEM); C(KVM_CAP_IMMEDIATE_EXIT); C(KVM_CAP_USER_NMI); C(KVM_CAP_SYNC_MMU);
    C(KVM_CAP_INTERNAL_ERROR_DATA); C(KVM_CAP_IRQ_ROUTING); C(KVM_CAP_ADJUST_CLOCK);
    C(KVM_MEM_LOG_DIRTY_PAGES); C(KVM_MEM_READONLY); C(KVM_PIT_SPEAKER_DUMMY);
    C(KVM_EXIT_IO_IN); C(KVM_EXIT_IO_OUT); C(KVM_MP_STATE_RUNNABLE); C(KVM_MP_STATE_HALTED);
    C(KVM_VCPUEVENT_VALID_NMI_PENDING); C(KVM_VCPUEVENT_VALID_SIPI_VECTOR); C(KVM_VCPUEVENT_VALID_SHADOW);
    C(KVM_X86_SHADOW_INT_MOV_SS); C(KVM_X86_SHADOW_INT_STI); C(KVM_INTERNAL_ERROR_EMULATION);
    C(KVM_SYSTEM_EVENT_SHUTDOWN); C(KVM_SYSTEM_EVENT_RESET); C(KVM_SYSTEM_EVENT_CRASH);
    C(KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
    return 0;
}

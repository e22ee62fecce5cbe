#!/usr/bin/env bash
# KVM exit-loop throughput, side by side: SharpVmm's KvmVcpu.Run, a bare C KVM_RUN loop (the floor any VMM pays on
# this host), and QEMU (-accel kvm, and TCG for reference) running the very same guest bytes.
# The guest (real mode, loaded at 0x1000) does COUNT back-to-back `out 0x80, al`, then `out 0xf4, al` with 0 and hlt.
# usage: bench/kvm-exits.sh [COUNT]     (default 200000)
set -euo pipefail
COUNT=${1:-200000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t <= 0) print "n/a"; else printf "%.0f", n / t }'; }

echo "== building SharpVmm.Bench (Release)"
dotnet build -c Release "$ROOT/bench/SharpVmm.Bench" -v quiet -nologo >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
BENCH=(dotnet "$ROOT/bench/SharpVmm.Bench/bin/Release/net10.0/SharpVmm.Bench.dll" kvm-exits)
"${BENCH[@]}" --count "$COUNT" --write-guest "$WORK/guest.bin" >/dev/null
"${BENCH[@]}" --count 0 --write-guest "$WORK/guest0.bin" >/dev/null

echo "== SharpVmm (KvmAccelerator, no irqchip: HLT exits to user space)"
"${BENCH[@]}" --count "$COUNT"
echo "== SharpVmm (KvmAccelerator, in-kernel irqchip)"
"${BENCH[@]}" --count "$COUNT" --irqchip

echo "== bare C KVM_RUN loop (same guest, no VMM around it)"
if command -v gcc >/dev/null && [ -e /usr/include/linux/kvm.h ]; then
    cat >"$WORK/loop.c" <<'C'
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
int main(int argc, char **argv) {
    int kvm = open("/dev/kvm", O_RDWR), vm = ioctl(kvm, KVM_CREATE_VM, 0);
    size_t size = 1 << 20;
    unsigned char *mem = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    FILE *f = fopen(argv[1], "rb"); size_t n = fread(mem + 0x1000, 1, size - 0x1000, f); fclose(f);
    (void)n;
    struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = size, .userspace_addr = (unsigned long)mem };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) { perror("region"); return 1; }
    int cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    struct kvm_run *run = mmap(0, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    struct kvm_sregs s; ioctl(cpu, KVM_GET_SREGS, &s); s.cs.base = 0; s.cs.selector = 0; ioctl(cpu, KVM_SET_SREGS, &s);
    struct kvm_regs g; memset(&g, 0, sizeof g); g.rip = 0x1000; g.rflags = 2; ioctl(cpu, KVM_SET_REGS, &g);
    struct timespec a, b; long exits = 0; clock_gettime(CLOCK_MONOTONIC, &a);
    for (;;) {
        if (ioctl(cpu, KVM_RUN, 0) < 0) { perror("KVM_RUN"); return 1; }
        exits++;
        if (run->exit_reason == KVM_EXIT_IO) continue;
        if (run->exit_reason == KVM_EXIT_HLT) break;
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason); return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double t = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("c-loop: %ld exits in %.3f s = %.0f exits/s\n", exits, t, exits / t);
    return 0;
}
C
    gcc -O2 -o "$WORK/loop" "$WORK/loop.c" && "$WORK/loop" "$WORK/guest.bin"
else
    echo "c-loop: skipped (needs gcc and linux-libc-dev)"
fi

# QEMU: wall time of the COUNT guest minus that of the empty guest, so start-up is not counted.
qemu_run() { # accel guest -> prints seconds, or fails
    local accel=$1 guest=$2 t0 t1 rc=0
    t0=$(now)
    timeout 30 qemu-system-x86_64 -accel "$accel" -M pc -nographic -device isa-debug-exit,iobase=0xf4,iosize=1 \
        -device loader,file="$guest",addr=0x1000,cpu-num=0 </dev/null >"$WORK/qemu-$accel.log" 2>&1 || rc=$?
    t1=$(now)
    # isa-debug-exit turns the guest's 0 into exit status (0 << 1) | 1 = 1.
    [ "$rc" -eq 1 ] || return 1
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
for accel in kvm tcg; do
    echo "== QEMU -accel $accel"
    if ! command -v qemu-system-x86_64 >/dev/null; then echo "qemu-$accel: skipped (qemu-system-x86 not installed)"; continue; fi
    if base=$(qemu_run "$accel" "$WORK/guest0.bin") && full=$(qemu_run "$accel" "$WORK/guest.bin"); then
        t=$(awk -v a="$full" -v b="$base" 'BEGIN { printf "%.3f", a - b }')
        if awk -v t="$t" 'BEGIN { exit !(t < 0.05) }'; then
            echo "qemu-$accel: $COUNT port writes took less than the start-up noise (${full} s vs ${base} s for none): too fast to measure at this COUNT"
            continue
        fi
        if [ "$accel" = kvm ]; then what="exits/s"; else what="port writes/s (TCG does not exit; reference only)"; fi
        echo "qemu-$accel: $COUNT port writes in $t s (after ${base} s start-up) = $(rate "$COUNT" "$t") $what"
    elif grep -q "KVM internal error" "$WORK/qemu-$accel.log"; then
        echo "qemu-$accel: not possible on this host: QEMU ended in \"KVM internal error\" ($(grep -m1 -i 'emulation failure\|Suberror' "$WORK/qemu-$accel.log")); PVM's in-kernel emulator cannot run QEMU's start-up path"
    else
        echo "qemu-$accel: failed; last lines of its output:"; tail -5 "$WORK/qemu-$accel.log"
    fi
done

#!/bin/sh
# In-guest sequential dd throughput on a virtio-blk qcow2 disk, SharpVmm (emu) vs QEMU TCG microvm, alternating
# (needs qemu-system-x86, qemu-utils and guest/setup.sh).
#   bench/virtio-blk-dd.sh                  3 runs each, 64 MiB
#   bench/virtio-blk-dd.sh --both-modes     also SharpVmm with requests served on the vCPU thread (no I/O thread)
#   any option: --runs N --mib M --sharpvmm PATH --qemu PATH --no-qemu --no-iothread --both-modes
set -e
cd "$(dirname "$0")/.."
dotnet build -c Release src/SharpVmm.Cli >/dev/null
dotnet build -c Release bench/SharpVmm.Bench >/dev/null
exec dotnet bench/SharpVmm.Bench/bin/Release/net10.0/SharpVmm.Bench.dll virtio-blk-dd "$@"

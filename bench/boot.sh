#!/bin/sh
# Linux boot to poweroff, SharpVmm (emu, translator off and on) vs QEMU TCG microvm, alternating (needs qemu-system-x86 and guest/setup.sh).
#   bench/boot.sh             5 runs each
#   bench/boot.sh --runs 9    any BootBench option: --runs N --sharpvmm PATH --qemu PATH --kernel K --initrd I --tsc-khz K
set -e
cd "$(dirname "$0")/.."
dotnet build -c Release src/SharpVmm.Cli >/dev/null
dotnet build -c Release bench/SharpVmm.Bench >/dev/null
exec dotnet bench/SharpVmm.Bench/bin/Release/net10.0/SharpVmm.Bench.dll boot "$@"

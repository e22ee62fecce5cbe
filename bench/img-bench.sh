#!/bin/sh
# Side-by-side block benchmarks: SharpVmm.Block vs qemu-img (needs qemu-utils).
#   bench/img-bench.sh            4K I/O rows (256 MiB images) and the convert rows (2 GiB, real processes)
#   bench/img-bench.sh convert 2048 5 cold   convert rows only: size MiB, best of N, page cache warm or cold
#   bench/img-bench.sh convert 2048 5 warm together   both tools at the same moment (fair on a loaded host)
#   bench/img-bench.sh io 512     only the I/O rows, 512 MiB images
set -e
cd "$(dirname "$0")/.."
dotnet build -c Release bench/SharpVmm.Bench >/dev/null
dotnet build -c Release src/SharpVmm.Cli >/dev/null
B="dotnet bench/SharpVmm.Bench/bin/Release/net10.0/SharpVmm.Bench.dll"
case "${1:-all}" in
  io) $B block-io --size "${2:-256}" ;;
  convert) $B img-convert --size "${2:-2048}" --repeat "${3:-5}" --cache "${4:-warm}" ${5:+--together} ;;
  *) $B block-io --size 256; $B img-convert --size 2048 --repeat 5 ;;
esac

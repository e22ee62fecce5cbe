#!/bin/sh
# Side-by-side block benchmarks: SharpVmm.Block vs qemu-img (needs qemu-utils).
#   bench/img-bench.sh            4K I/O rows (256 MiB images) and the 1 GiB convert rows
#   bench/img-bench.sh io 512     only the I/O rows, 512 MiB images
set -e
cd "$(dirname "$0")/.."
dotnet build -c Release bench/SharpVmm.Bench >/dev/null
B="dotnet bench/SharpVmm.Bench/bin/Release/net10.0/SharpVmm.Bench.dll"
case "${1:-all}" in
  io) $B block-io --size "${2:-256}" ;;
  convert) $B img-convert --size "${2:-1024}" --repeat "${3:-3}" ;;
  *) $B block-io --size 256; $B img-convert --size 1024 --repeat 3 ;;
esac

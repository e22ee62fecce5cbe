#!/usr/bin/env bash
# Sets everything up and boots the default guest (Debian's cloud kernel + a busybox initramfs) with a shell on
# this terminal. Ctrl-A x quits. Extra arguments go to 'sharpvmm run' (e.g. --cpus 2, --disk d.qcow2, --rng).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/publish.sh
exec artifacts/bin/sharpvmm run "$@"

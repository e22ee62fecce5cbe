#!/usr/bin/env bash
# Builds the sharpvmm users run: ahead-of-time compiled to one native binary, artifacts/bin/sharpvmm (starts in
# milliseconds, no JIT, about a third of the JIT build's memory). scripts/run.sh and scripts/test.sh call it.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet publish src/SharpVmm.Cli -c Release -r linux-x64 -o artifacts/bin --verbosity quiet -nologo "$@"
# The same binary under QEMU's name speaks QEMU's command line (what libvirt runs as a domain's <emulator>).
ln -sf sharpvmm artifacts/bin/qemu-system-x86_64

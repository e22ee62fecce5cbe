#!/usr/bin/env bash
# Sets everything up and boots the default guest with its console on this terminal.
# Extra arguments go to 'sharpvmm run' (e.g. --accel emu).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dotnet build src/SharpVmm.Cli --no-restore -c Release --verbosity quiet -nologo
sharpvmm=src/SharpVmm.Cli/bin/Release/net10.0/sharpvmm
work=${SHARPVMM_WORK:-$HOME/.cache/sharpvmm}
mkdir -p "$work"
"$sharpvmm" guest hello --mode long --address 0x100000 -o "$work/hello.bin"
exec "$sharpvmm" run --flat "$work/hello.bin@0x100000" --entry-mode long --serial stdio "$@"

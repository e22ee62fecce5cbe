#!/usr/bin/env bash
# Sets everything up, then builds and runs every test project. Exit code: non-zero if any test failed.
# The last line sums up all projects: "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dotnet build SharpVmm.slnx --no-restore -c Release --verbosity quiet -nologo
# End-to-end tests run the native binary users get (SHARPVMM_BIN); unit tests use the JIT-built assemblies.
scripts/publish.sh
export SHARPVMM_BIN="$PWD/artifacts/bin/sharpvmm"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test SharpVmm.slnx --no-build -c Release --verbosity quiet -nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
read -r passed failed skipped < <(awk '
  /Passed!|Failed!/ {
    for (i = 1; i <= NF; i++) {
      if ($i == "Failed:")  { f += $(i+1) }
      if ($i == "Passed:")  { p += $(i+1) }
      if ($i == "Skipped:") { s += $(i+1) }
    }
  }
  END { printf "%d %d %d\n", p, f, s }' "$log")
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$passed" -eq 0 ]; then echo "no test ran" >&2; exit 1; fi
exit "$status"

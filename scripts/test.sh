#!/usr/bin/env bash
# Sets everything up, then builds and runs every test project. Exit code: non-zero if any test failed.
# The last line sums up all projects: "tests: N passed, N failed, N skipped"; the line before it counts the skipped
# tests by the host feature they need ("needs KVM: 58"), read from each project's TRX results.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dotnet build SharpVmm.slnx --no-restore -c Release --verbosity quiet -nologo
# End-to-end tests run the native binary users get (SHARPVMM_BIN); unit tests use the JIT-built assemblies.
scripts/publish.sh
export SHARPVMM_BIN="$PWD/artifacts/bin/sharpvmm"
log=$(mktemp)
results=$(mktemp -d)
trap 'rm -rf "$log" "$results"' EXIT
export SHARPVMM_TEST_RESULTS="$results"
set +e
dotnet test SharpVmm.slnx --no-build -c Release --verbosity quiet -nologo --logger trx "$@" 2>&1 | grep --line-buffered -v "^Results File: " | tee "$log"
status=${PIPESTATUS[0]}
# The emulator's directed and differential suites once more with every block translated (the first pass runs the
# default: hot blocks only), so both tiers are held to the same answers.
SHARPVMM_TEST_JIT=forced dotnet test tests/SharpVmm.Emulator.Tests --no-build -c Release --verbosity quiet -nologo --logger trx "$@" 2>&1 \
  | grep --line-buffered -v "^Results File: " | sed -u 's/^\(Passed!\|Failed!\)/\1 (jit=forced)/' | tee -a "$log"
jit_status=${PIPESTATUS[0]}
[ "$status" -ne 0 ] || status=$jit_status
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
# Every skip reason starts "needs <feature>:" (tests/SharpVmm.Testing/Host/HostFeatures.cs); count by that prefix.
skips=$(cat "$results"/*/*.trx 2>/dev/null | awk '
  /outcome="NotExecuted"/ { skipped = 1 }
  skipped && /<Message>/ {
    m = $0; sub(/.*<Message>/, "", m); sub(/<\/Message>.*/, "", m)
    split(m, parts, ":"); n[parts[1]]++; skipped = 0
  }
  /<\/UnitTestResult>/ { skipped = 0 }
  END { for (k in n) printf "%s%s: %d", (c++ ? ", " : ""), k, n[k] }')
# The console logger at quiet verbosity names a failed test but not why; print each failure's message and the top of
# its stack from the TRX files, which the trap deletes.
cat "$results"/*/*.trx 2>/dev/null | awk '
  /<UnitTestResult .*outcome="Failed"/ { failing = 1; n = 0; t = $0; sub(/.*testName="/, "", t); sub(/".*/, "", t); print "--- failed: " t }
  failing && /<Message>|<StackTrace>/ { show = 1 }
  failing && show && n < 40 { l = $0; gsub(/<\/?(Message|StackTrace|ErrorInfo|Output)>/, "", l); gsub(/&lt;/, "<", l); gsub(/&gt;/, ">", l); gsub(/&quot;/, "\"", l); gsub(/&amp;/, "\\&", l); sub(/^[ \t]+/, "", l); if (l ~ /[^ ]/) { print "    " l; n++ } }
  failing && /<\/StackTrace>|<\/UnitTestResult>/ { failing = 0; show = 0 }'
echo "skipped by reason: ${skips:-none}"
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$passed" -eq 0 ]; then echo "no test ran" >&2; exit 1; fi
exit "$status"

#!/usr/bin/env bash
# bench/fuzz.sh TARGET SECONDS: one coverage-guided campaign (AFL++ driving SharpFuzz-instrumented assemblies) on a
# fuzz target of tests/SharpVmm.Fuzz, seeded from its committed corpus. By hand only: CI replays the corpora as unit
# tests (tests/SharpVmm.Fuzz.Tests) and needs neither AFL++ nor the instrumentation. Run one campaign at a time; afl-fuzz
# runs at nice 19 (FUZZ_NICE= changes it), the build before it at normal priority. Results in artifacts/fuzz/TARGET/ (queue, crashes, hangs); the
# summary line gives execs/s, coverage edges and findings. Reproduce a finding without AFL:
#   dotnet artifacts/fuzz/bin-TARGET/SharpVmm.Fuzz.dll TARGET artifacts/fuzz/TARGET/default/crashes/id:...
set -euo pipefail
cd "$(dirname "$0")/.."
targets="qcow2 img-check virtqueue qmp config snapshot migration"
if [ $# -ne 2 ] || ! [[ " $targets " == *" $1 "* ]] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: bench/fuzz.sh TARGET SECONDS   (targets: $targets)" >&2
  exit 2
fi
target=$1 seconds=$2
if ! command -v afl-fuzz >/dev/null; then
  # Only campaigns need AFL++ (CI replays the corpora without it), so it is installed here rather than by setup.sh.
  echo "bench/fuzz.sh: installing afl++ (Debian package)" >&2
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends afl++ >/dev/null
fi

# The assemblies whose code the target exercises: instrumenting only those keeps the coverage map about them.
case $target in
  qcow2|img-check) instrument="SharpVmm.Block.dll" ;;
  virtqueue) instrument="SharpVmm.Devices.dll" ;;
  qmp) instrument="SharpVmm.Monitor.dll" ;;
  config) instrument="sharpvmm.dll" ;;   # the Cli project's assembly
  snapshot|migration) instrument="SharpVmm.Machine.dll" ;;
esac

bin=artifacts/fuzz/bin-$target
out=artifacts/fuzz/$target
rm -rf "$bin"
dotnet tool restore >/dev/null
# Built where the tests build it (a no-op when up to date), then copied: instrumenting rewrites the assemblies.
dotnet build tests/SharpVmm.Fuzz -c Release --verbosity quiet -nologo >/dev/null
mkdir -p artifacts/fuzz
cp -r tests/SharpVmm.Fuzz/bin/Release/net10.0 "$bin"
for dll in $instrument; do dotnet sharpfuzz "$bin/$dll" >/dev/null; done

mkdir -p "$out"
# A campaign on a shared, loaded machine: no CPU pinning, no governor or core-pattern demands; the .NET host is
# not an AFL-compiled binary (SharpFuzz speaks the fork-server protocol itself).
export AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
export AFL_AUTORESUME=1
# The runtime itself needs far more than AFL's default memory limit; a slow first run (JIT) needs a long time-out.
nice -n "${FUZZ_NICE:-19}" afl-fuzz -V "$seconds" -t 10000 -m none -i "tests/SharpVmm.Fuzz/Corpus/$target" -o "$out" -- dotnet "$bin/SharpVmm.Fuzz.dll" "$target" >"$out/afl.log" 2>&1 || {
  echo "bench/fuzz.sh: afl-fuzz failed; its log:" >&2; tail -30 "$out/afl.log" >&2; exit 1; }

stats=$out/default/fuzzer_stats
val() { awk -F': *' -v k="$1" '$1 ~ "^"k" *$" { print $2 }' "$stats"; }
echo "fuzz $target: $(val run_time) s, $(val execs_done) execs, $(val execs_per_sec) execs/s, edges $(val edges_found) of $(val total_edges) ($(val bitmap_cvg)), corpus $(val corpus_count), crashes $(val saved_crashes), hangs $(val saved_hangs)"

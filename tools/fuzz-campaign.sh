#!/usr/bin/env bash
# The fuzz campaign behind SECURITY.md's fuzz figure (`make fuzz` runs it):
#   tools/fuzz-campaign.sh RUNS JOBS LOG FIGURES
# Builds the libFuzzer target (fuzz/fuzz_targets/c_abi.rs: nightly Rust, cargo-fuzz,
# AddressSanitizer), then fuzzes for RUNS executions in JOBS processes from fuzz/corpus/c_abi
# and the seeds, timed from after the build. Everything goes to LOG. When every job ends
# without a finding and they ran at least RUNS executions between them, the figure's row goes
# to FIGURES (what `make security-report` puts in SECURITY.md); a finding stops the campaign,
# its input in fuzz/artifacts/c_abi/.
# Why -jobs and not -fork: -fork restarts its processes every few seconds at first and merges
# after each; on this 2-core machine, shared, that cut the executions per second to a third.
# Exit status: libFuzzer's, or 1 when the campaign stopped short of RUNS.
set -uo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 RUNS JOBS LOG FIGURES" >&2
  exit 2
fi
runs=$1 jobs=$2 log=$3 figures=$4
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
mkdir -p fuzz/corpus/c_abi "$(dirname "$log")" "$(dirname "$figures")"
rm -f "$figures"
commit=${FUZZ_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
if ! (cd fuzz && "$cargo" +nightly fuzz build c_abi) > "$log" 2>&1; then
  tail -n 20 "$log"
  exit 1
fi
# JOBS > 1: libFuzzer's -jobs, each job a whole fuzzing process with RUNS / JOBS executions,
# sharing the corpus (their logs: fuzz/fuzz-N.log, copied into LOG at the end).
each=$(((runs + jobs - 1) / jobs))
if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); else parallel=(); fi
args=(-runs="$each" "${parallel[@]}" -max_len=1024 -print_final_stats=1)
echo "fuzz campaign: commit $commit, pid $$, started $(date -u '+%F %T') UTC: ${args[*]}, ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0}" >> "$log"
mkdir -p fuzz/artifacts/c_abi
# AddressSanitizer keeps no allocation stack per malloc (malloc_context_size=0): every check
# stays, a report only lacks where the memory was allocated (replay the saved input with the
# defaults to get it). That stack walk on each allocation cost about a sixth of the
# executions per second here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0}
stamp=$(mktemp)
start=$(date +%s)
set -m # the fuzzer in a process group of its own, to stop all its jobs at once
(cd fuzz && exec "$cargo" +nightly fuzz run c_abi corpus/c_abi corpus-seed -- "${args[@]}") >> "$log" 2>&1 &
fuzzer=$!
set +m
# A finding in one job stops the others (one process stops by itself). libFuzzer's slow-unit-*
# files are not findings (an input that took over 10 s, as any does when the machine is busy
# or the job was stopped for a while); a hang is a timeout-* file, and stops the campaign.
polls=0
while kill -0 "$fuzzer" 2>/dev/null; do
  if [ $((polls++ % 30)) = 0 ] && [ -n "$(find fuzz/artifacts/c_abi -type f ! -name 'slow-unit-*' -newer "$stamp" | head -n 1)" ]; then
    echo "fuzz: a finding in fuzz/artifacts/c_abi, stopping every job" >> "$log"
    sleep 5
    kill -- -"$fuzzer" 2>/dev/null
    break
  fi
  sleep 1
done
wait "$fuzzer"
rc=$?
rm -f "$stamp"
secs=$(($(date +%s) - start))
# Counted executions: the sum of the jobs' "Done N runs".
done=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | awk '{ n += $1 } END { if (NR) print n }')
echo "fuzz: $runs runs asked, ${done:-no} runs counted, exit $rc, $secs s, ended $(date -u '+%F %T') UTC" >> "$log"
grep -E '^(Done|==[0-9]+==ERROR|SUMMARY|thread .* panicked)' "$log"
tail -n 1 "$log"
if [ "$rc" != 0 ]; then exit "$rc"; fi
if [ -z "$done" ] || [ "$done" -lt "$runs" ]; then exit 1; fi
how=$([ "$jobs" -gt 1 ] && echo "$jobs processes" || echo "one process")
took=$(printf '%d h %02d min' $((secs / 3600)) $((secs % 3600 / 60)))
printf 'fuzz\tC ABI fuzzed with libFuzzer under AddressSanitizer, %s, %s here (%d per second, commit %s): random sequences of all 30 exports on one handle (create, shared directories, bind, adopt, connect, well-known paths, sweep, hand-off and take-over, policies), fuzzed paths, names, flags, types, backlogs, descriptors and buffer sizes; no crash, leak or undocumented status, out-parameters untouched on failure, no descriptor leaked, nothing left behind\t%s\t%s\tfuzz/fuzz_targets/c_abi.rs\n' \
  "$how" "$took" $((done / (secs > 0 ? secs : 1))) "$commit" "$done" "$done" > "$figures"

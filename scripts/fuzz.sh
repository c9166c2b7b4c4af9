#!/usr/bin/env bash
# Runs cargo-fuzz targets one after another and prints what each run covered:
#
#   scripts/fuzz.sh RUNS crate:target...     (make fuzz: FUZZ_RUNS executions of every target)
#
# Each target's libFuzzer output goes to target/fuzz/<crate>-<target>.log; the terminal gets one line
# per target and a table at the end (executions, wall time, exec/s, corpus, coverage). A finding does
# not stop the other targets: the script reports it (its artifact is in the fuzz crate's artifacts/)
# and exits 1 at the end.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 RUNS crate:target..." >&2; exit 2; }
runs=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
logs=$root/target/fuzz
mkdir -p "$logs"
cargo=${CARGO:-cargo}

rows=()
failed=0
for spec in "$@"; do
  crate=${spec%%:*}
  target=${spec#*:}
  dir=$root/crates/$crate/fuzz
  log=$logs/$crate-$target.log
  cd "$dir"
  # a fuzz crate with a `seeds` binary writes its seed corpus first
  if grep -q '^name = "seeds"' Cargo.toml; then "$cargo" +nightly run --quiet --bin seeds; fi
  # built before the clock starts, so the time is the fuzzing alone
  "$cargo" +nightly fuzz build "$target"
  echo "fuzz $crate:$target: $runs executions (libFuzzer output: $log)"
  start=$(date +%s.%N)
  status=ok
  "$cargo" +nightly fuzz run "$target" -- -runs="$runs" -max_len=512 >"$log" 2>&1 || status=FOUND
  end=$(date +%s.%N)
  # libFuzzer's last status line: "#N DONE cov: C ft: F corp: files/bytes lim: L exec/s: E rss: R"
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  if [ "$status" = ok ] && [ -z "$done_line" ]; then status=FOUND; fi
  if [ "$status" != ok ]; then
    failed=1
    echo "fuzz $crate:$target: a finding (or libFuzzer failed); the end of its log:" >&2
    tail -n 40 "$log" >&2
    # the last progress line says how far it got
    done_line=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true)
  fi
  rows+=("$(awk -v spec="$spec" -v start="$start" -v end="$end" -v status="$status" -v line="$done_line" 'BEGIN {
    n = split(line, f, /[[:space:]]+/)
    execs = substr(f[1], 2); cov = "-"; ft = "-"; corp = "-"
    for (i = 2; i < n; i++) {
      if (f[i] == "cov:") cov = f[i + 1]
      if (f[i] == "ft:") ft = f[i + 1]
      if (f[i] == "corp:") corp = f[i + 1]
    }
    secs = end - start
    printf "%-32s %12s %9.1f %9.0f %14s %6s %7s  %s", spec, execs, secs, (secs > 0 ? execs / secs : 0), corp, cov, ft, status
  }')")
done

echo
printf "%-32s %12s %9s %9s %14s %6s %7s  %s\n" target executions "time (s)" exec/s "corpus files/B" cov ft result
printf "%s\n" "${rows[@]}"
exit "$failed"

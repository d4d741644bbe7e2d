#!/usr/bin/env bash
# Instructions per request of bench/record_cost.py (Gateway.finish + the flusher's encode),
# counted by callgrind: repeatable on a busy machine. Usage: bash bench/record_instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SCRIPT=${SCRIPT:-bench/record_cost.py}
count() {
  local out
  out=$(mktemp)
  RECORD_BENCH_N=$1 RECORD_BENCH_RUNS=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$PY" "$SCRIPT" >/dev/null 2>"$out.err"
  grep -m1 -oP '(?<=^summary: )\d+' "$out" || grep -oP '(?<=Collected : )\d+' "$out.err"
  rm -f "$out" "$out.err"
}
small=$(count 1000)
large=$(count 5000)
echo "instructions per request: $(( (large - small) / 4000 ))"

#!/usr/bin/env bash
# Instructions per request of bench/request_cost.py (a whole chat request inside the router),
# counted by callgrind: repeatable on a busy machine. Both stages, or the one named:
#   bash bench/request_instructions.sh [none|limits]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
count() {  # count N ARGS...: instructions of a run of N measured requests
  local n=$1 out; shift
  out=$(mktemp)
  REQUEST_BENCH_N=$n REQUEST_BENCH_RUNS=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$PY" bench/request_cost.py "$@" >/dev/null 2>"$out.err"
  grep -m1 -oP '(?<=^summary: )\d+' "$out" || grep -oP '(?<=Collected : )\d+' "$out.err"
  rm -f "$out" "$out.err"
}
for stage in ${1:-none limits}; do
  args=(); [[ $stage == limits ]] && args=(--limits)
  small=$(count 500 "${args[@]}")
  large=$(count 2500 "${args[@]}")
  echo "$stage: instructions per request: $(( (large - small) / 2000 ))"
done

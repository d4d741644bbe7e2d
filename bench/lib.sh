# shellcheck shell=bash
# Helpers sourced by bench/run.sh: background processes (own process groups, always killed on
# exit) and measurements (wrk + chat.lua, the TTFT probe, CPU/RSS from /proc, foreign load).
# The measuring approach follows ../shared/bench/run_bench.sh (the reference harness).

HZ=$(getconf CLK_TCK)
COMPLETED=0    # requests completed by the load generators (wrk runs, warm-ups, TTFT probes)
PGIDS=()       # process groups started by this run (killed by cleanup)
EXTRA_PIDS=()  # processes outside our groups (Tansu runs in its own session)

log() { printf '%s\n' "$*" >&2; }

# start NAME CPU CMD...: run CMD pinned to CPU in its own process group; sets $LAST_PID.
start() {
  local name=$1 cpu=$2; shift 2
  setsid taskset -c "$cpu" "$@" >"$RUN_DIR/$name.log" 2>&1 &
  LAST_PID=$!
  PGIDS+=("$LAST_PID")
  echo "$LAST_PID" >"$RUN_DIR/$name.pid"
}

# stop_group PID: TERM the process group, wait up to 5 s, then KILL it.
stop_group() {
  local pg=$1 i
  kill -TERM -- "-$pg" 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 -- "-$pg" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$pg" 2>/dev/null || true
}

cleanup() {  # newest first: clients stop before the broker they talk to
  local i p
  for ((i = ${#PGIDS[@]} - 1; i >= 0; i--)); do stop_group "${PGIDS[i]}"; done
  for p in "${EXTRA_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  PGIDS=(); EXTRA_PIDS=()
}

# wait_http URL TIMEOUT_S [CURL_ARGS...]: poll until URL answers 2xx; 0 on success.
wait_http() {
  local url=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    curl -sf -o /dev/null --max-time 2 "$@" "$url" && return 0
    sleep 0.05
  done
  return 1
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
tree_ticks() { if [[ -n "$*" ]]; then "$PY" "$BENCH/procstat.py" "$@" | cut -d' ' -f1; else echo 0; fi; }
rss_mb() { "$PY" "$BENCH/procstat.py" "$@" | awk '{printf "%.0f %.0f", $2/1024, $3/1024}'; }

calib() {  # ms for a fixed pure-Python loop on the gateway core (VM speed drifts)
  taskset -c "$GW_CPU" python3 -c 'import time
t=time.perf_counter(); sum(i*i for i in range(2000000)); print(round((time.perf_counter()-t)*1000))'
}

# wait_quiet: until the box is idle (< QUIET_MAX_PCT of one core over 1 s), at most QUIET_TIMEOUT s.
wait_quiet() {
  local max=$((QUIET_MAX_PCT * HZ / 100)) waited=0 b0 b1
  while :; do
    b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
    ((b1 - b0 <= max)) && break
    waited=$((waited + 1))
    ((waited >= QUIET_TIMEOUT)) && { log "  (box still busy after ${QUIET_TIMEOUT}s; measuring anyway)"; break; }
  done
  return 0
}

# wait_idle PID...: until the gateway tree uses < 20 % of a core (drains queued requests).
wait_idle() {
  local t0 t1 i
  for i in $(seq 30); do
    t0=$(tree_ticks "$@"); sleep 0.5; t1=$(tree_ticks "$@")
    (((t1 - t0) * 100 < HZ * 10)) && return 0
  done
}

# wrk_once TARGET SCEN URL MODEL STREAM CONC DURATION VALIDATE: one wrk run. VALIDATE=1 is a
# warm-up (every body checked, nothing recorded); otherwise $LAST_ROW holds the result row
# "TARGET<TAB>wrk<TAB>k=v ..." and $LAST_OTHER the foreign CPU % during the run.
wrk_once() {
  local target=$1 scen=$2 url=$3 model=$4 stream=$5 conc=$6 dur=$7 validate=$8
  local tf out line b0 b1 g0 g1 o0 o1 t0 t1 wrk_t cal=-
  [[ $validate == 1 ]] || { wait_quiet; cal=$(calib); }
  tf=$(mktemp)
  g0=$(tree_ticks $WATCH_PIDS); o0=$(tree_ticks $OWN_PIDS); b0=$(busy_ticks); t0=$(now)
  out=$(BENCH_API="${BENCH_API:-chat}" BENCH_MODEL="$model" BENCH_STREAM="$stream" BENCH_VALIDATE="$validate" BENCH_KEY="$BENCH_KEY" \
    /usr/bin/time -f '%U %S' -o "$tf" taskset -c "$LOAD_CPU" \
    wrk -t1 -c"$conc" -d"$dur" --timeout 30s -s "$BENCH/chat.lua" "$url" 2>&1) || true
  t1=$(now); b1=$(busy_ticks); g1=$(tree_ticks $WATCH_PIDS); o1=$(tree_ticks $OWN_PIDS)
  wrk_t=$(awk -v hz="$HZ" 'NF==2{printf "%d", ($1+$2)*hz}' "$tf"); rm -f "$tf"
  line=$(grep '^RESULT' <<<"$out" || true)
  if [[ -z $line ]]; then log "  wrk failed: $(head -c 400 <<<"$out")"; return 1; fi
  grep 'BAD RESPONSE' <<<"$out" | head -2 >&2 || true
  LAST_KV="${line#RESULT }"
  local n; n=$(tr ' ' '\n' <<<"$LAST_KV" | awk -F= '$1=="reqs"{print $2}')
  COMPLETED=$((COMPLETED + ${n:-0}))
  local errs
  errs=$(tr ' ' '\n' <<<"$LAST_KV" | awk -F= '/^(err_|bad_body)/{s+=$2} END{print s+0}')
  LAST_ERRS=$errs
  if [[ $validate == 1 ]]; then
    log "  warm-up $scen c=$conc: $(tr ' ' '\n' <<<"$LAST_KV" | grep '^reqs=') errors=$errs"
    return 0
  fi
  local secs cpu other rss
  secs=$(elapsed "$t0" "$t1")
  cpu=$(awk -v d=$((g1 - g0)) -v hz="$HZ" -v s="$secs" 'BEGIN{printf "%.0f", d/hz/s*100}')
  other=$(awk -v d=$((b1 - b0 - (g1 - g0) - (o1 - o0) - ${wrk_t:-0})) -v hz="$HZ" -v s="$secs" \
    'BEGIN{v=d/hz/s*100; if (v<0) v=0; printf "%.0f", v}')
  rss=$(rss_mb $WATCH_PIDS | cut -d' ' -f1)
  LAST_OTHER=$other
  LAST_ROW="$target	wrk	scenario=$scen conc=$conc $LAST_KV errors=$errs cpu=$cpu rss_mb=$rss other_cpu=$other calib_ms=$cal"
}

# wrk_run TARGET SCEN URL MODEL STREAM CONC: measure; while foreign load was above
# OTHER_MAX_PCT, re-measure (at most RETRIES times) and keep the least contaminated run.
wrk_run() {
  local try=0 best_row="" best_kv="" best_errs=0 best_other=999999
  while :; do
    wrk_once "$1" "$2" "$3" "$4" "$5" "$6" "$DURATION" 0 || return 1
    if ((LAST_OTHER < best_other)); then
      best_other=$LAST_OTHER best_row=$LAST_ROW best_kv=$LAST_KV best_errs=$LAST_ERRS
    fi
    ((LAST_OTHER <= OTHER_MAX_PCT)) && break
    ((try >= RETRIES)) && { log "  still contaminated (other CPU ${LAST_OTHER}%), kept the cleanest run"; break; }
    try=$((try + 1)); log "  contaminated (other CPU ${LAST_OTHER}%), re-measuring"
    wait_idle $WATCH_PIDS
  done
  local n; n=$(tr ' ' '\n' <<<"$best_kv" | awk -F= '$1=="reqs"{print $2}')
  if ((${n:-0} < $6)); then  # not even one request per connection finished: run longer
    local long="$((${DURATION%s} * 3))s"
    log "  only ${n:-0} requests completed at c=$6; re-measuring for $long"
    wrk_once "$1" "$2" "$3" "$4" "$5" "$6" "$long" 0 || return 1
    best_other=$LAST_OTHER best_row=$LAST_ROW best_kv=$LAST_KV best_errs=$LAST_ERRS
  fi
  printf '%s\n' "$best_row" >>"$RESULTS"
  log "  $2 c=$6: $(tr ' ' '\n' <<<"$best_kv" | grep -E '^(rps|p50_ms|p99_ms)=' | tr '\n' ' ')errors=$best_errs other_cpu=${best_other}%"
  wait_idle $WATCH_PIDS
}

warmup() { wrk_once "$1" "$2" "$3" "$4" "$5" 16 "$WARMUP" 1; }

# ttft_run TARGET URL MODEL CONC: streaming TTFT probe (client on the load core).
ttft_run() {
  local target=$1 url=$2 model=$3 c=$4 out
  wait_quiet
  out=$(taskset -c "$LOAD_CPU" "$PY" "$BENCH/ttft_probe.py" --url "$url" --model "$model" \
    --key "$BENCH_KEY" -c "$c" --n $((c * TTFT_PER_CONN)) --warmup "$c" 2>&1 | grep '^TTFT' || true)
  if [[ -z $out ]]; then log "  ttft probe failed for $target c=$c"; return 0; fi
  printf '%s\tttft\t%s\n' "$target" "${out#TTFT }" >>"$RESULTS"
  COMPLETED=$((COMPLETED + c * (TTFT_PER_CONN + 1)))
  log "  ttft c=$c: $(tr ' ' '\n' <<<"$out" | grep -E '^(ttft_p50_ms|errors)=' | tr '\n' ' ')"
}

meta() { printf '%s\tmeta\t%s\n' "$1" "$2" >>"$RESULTS"; }

# run_suite TARGET BASE_URL FAST_MODEL SLOW_URL SLOW_MODEL STREAM_URL STREAM_MODEL
run_suite() {
  local target=$1 url=$2/chat/completions fast=$3 surl=$4/chat/completions slow=$5
  local turl=$6/chat/completions smodel=$7 c
  warmup "$target" chat "$url" "$fast" 0 || return 1
  if ((LAST_ERRS > 0)); then log "  $target: warm-up had errors; stage aborted"; return 1; fi
  for c in $CONCURRENCY; do wrk_run "$target" chat "$url" "$fast" 0 "$c"; done
  if [[ -n $STREAM_CONCURRENCY ]]; then
    warmup "$target" stream "$url" "$fast" 1
    for c in $STREAM_CONCURRENCY; do wrk_run "$target" stream "$url" "$fast" 1 "$c"; done
  fi
  if [[ -n $DELAY_CONCURRENCY ]]; then
    warmup "$target" delay50 "$surl" "$slow" 0
    for c in $DELAY_CONCURRENCY; do wrk_run "$target" delay50 "$surl" "$slow" 0 "$c"; done
  fi
  for c in $TTFT_CONCURRENCY; do ttft_run "$target" "$turl" "$smodel" "$c"; done
}

# ingress_suite TARGET BASE_URL FAST_MODEL SLOW_URL SLOW_MODEL: the other client APIs
# (INGRESS_APIS: /v1/messages, /v1/responses) in the scenarios of run_suite, named
# <api>, <api>_stream, <api>_delay50, beside the chat rows of the same run.
ingress_suite() {
  local target=$1 base=$2 fast=$3 sbase=$4 slow=$5 api c
  for api in $INGRESS_APIS; do
    local url=$base/$api surl=$sbase/$api
    BENCH_API=$api warmup "$target" "$api" "$url" "$fast" 0 || return 1
    if ((LAST_ERRS > 0)); then log "  $target $api: warm-up had errors; skipped"; continue; fi
    for c in $INGRESS_CONCURRENCY; do BENCH_API=$api wrk_run "$target" "$api" "$url" "$fast" 0 "$c"; done
    if [[ -n $INGRESS_STREAM_CONCURRENCY ]]; then
      BENCH_API=$api warmup "$target" "${api}_stream" "$url" "$fast" 1
      for c in $INGRESS_STREAM_CONCURRENCY; do
        BENCH_API=$api wrk_run "$target" "${api}_stream" "$url" "$fast" 1 "$c"
      done
    fi
    for c in $INGRESS_DELAY_CONCURRENCY; do
      BENCH_API=$api wrk_run "$target" "${api}_delay50" "$surl" "$slow" 0 "$c"
    done
  done
}

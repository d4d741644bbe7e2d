#!/usr/bin/env bash
# Turnout benchmark (`make bench`): mock direct (the limit), Turnout's router and LiteLLM's
# proxy in ONE run on this machine, each gateway pinned to one core (GW_CPU) while wrk, the
# mocks, the broker and the snapshot server share the other (LOAD_CPU). Prints one table with
# ratios and writes bench/RESULTS.md. See bench/README.md.
#
# Knobs (defaults in brackets):
#   STAGES ["direct turnout litellm"]   which targets to measure
#   DURATION [5s] WARMUP [2s]           each measured run / validated warm-up (c=16), seconds + "s"
#   CONCURRENCY ["1 16 64 256"]         non-streaming chat, upstream without delay
#   STREAM_CONCURRENCY ["16"]           streaming chat (include_usage), "" to skip
#   DELAY_CONCURRENCY ["1 16"]          chat over a 50 ms upstream (added latency), "" to skip
#   TTFT_CONCURRENCY ["1 16"] TTFT_PER_CONN [24]   stream TTFT probe (50 ms + 20 ms/chunk mock)
#   INGRESS_APIS ["messages responses"]  Turnout only: /v1/messages and /v1/responses beside chat,
#   INGRESS_CONCURRENCY ["64"] INGRESS_STREAM_CONCURRENCY ["16"] INGRESS_DELAY_CONCURRENCY ["1 16"]
#   GW_CPU [1] LOAD_CPU [0]             cores (taskset)
#   QUIET_MAX_PCT [10] QUIET_TIMEOUT [3]  wait for an idle box before each run, at most N s
#   OTHER_MAX_PCT [25] RETRIES [1]      re-measure a run when foreign CPU load was above N %
#   ROUTER_READY_TIMEOUT [30]           seconds for Turnout's /readyz to return 200
#   LITELLM_VENV [/tmp/turnout-bench/litellm-venv] LITELLM_VERSION [1.106.2]
#   LITELLM_READY_TIMEOUT [120] RESULTS_MD [bench/RESULTS.md] RUN_DIR [/tmp/turnout-bench/run-PID]
#   COMPILE_BYTECODE [1]                precompile the workspace venv first (as the image does)
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
STAGES=${STAGES:-"direct turnout litellm"}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY-"1 16 64 256"}
STREAM_CONCURRENCY=${STREAM_CONCURRENCY-16}
DELAY_CONCURRENCY=${DELAY_CONCURRENCY-"1 16"}
TTFT_CONCURRENCY=${TTFT_CONCURRENCY-"1 16"}
TTFT_PER_CONN=${TTFT_PER_CONN:-24}
INGRESS_APIS=${INGRESS_APIS-"messages responses"}
INGRESS_CONCURRENCY=${INGRESS_CONCURRENCY-64}
INGRESS_STREAM_CONCURRENCY=${INGRESS_STREAM_CONCURRENCY-16}
INGRESS_DELAY_CONCURRENCY=${INGRESS_DELAY_CONCURRENCY-"1 16"}
GW_CPU=${GW_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
QUIET_MAX_PCT=${QUIET_MAX_PCT:-10}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-3}
OTHER_MAX_PCT=${OTHER_MAX_PCT:-25}
RETRIES=${RETRIES:-1}
ROUTER_READY_TIMEOUT=${ROUTER_READY_TIMEOUT:-30}
LITELLM_VENV=${LITELLM_VENV:-/tmp/turnout-bench/litellm-venv}
LITELLM_VERSION=${LITELLM_VERSION:-1.106.2}
LITELLM_READY_TIMEOUT=${LITELLM_READY_TIMEOUT:-120}
RESULTS_MD=${RESULTS_MD:-$BENCH/RESULTS.md}
RUN_DIR=${RUN_DIR:-/tmp/turnout-bench/run-$$}
PY=${PY:-$ROOT/.venv/bin/python}
mkdir -p "$RUN_DIR"
RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- prerequisites -------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "wrk not found: installing it (apt-get install -y wrk)"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
[[ -x $PY ]] || (cd "$ROOT" && uv sync --locked >/dev/null)
"$PY" -c 'import uvloop, httptools, orjson, aiohttp' || { log "the workspace venv lacks uvloop/httptools/orjson/aiohttp"; exit 1; }
# Deployed routers run compiled modules (deploy/Dockerfile sets UV_COMPILE_BYTECODE=1; pip
# compiles LiteLLM's venv too). `uv sync` leaves none, and with PYTHONDONTWRITEBYTECODE=1 in
# the shell every router start would compile ~600 modules from source (~1.8 s more "time to
# ready"). compileall skips files whose .pyc is current, so this is quick after the first run.
if [[ ${COMPILE_BYTECODE:-1} == 1 ]]; then
  "$PY" -m compileall -q -j 0 "$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    "$ROOT"/libs/*/src "$ROOT"/services/*/src "$ROOT/src" >/dev/null 2>&1 || log "  (compileall reported errors; continuing)"
fi
free_port() { "$PY" -c 'from turnout_common.devinfra import free_port; print(free_port())'; }
BENCH_KEY=$("$PY" -c 'from turnout_common.crypto import new_virtual_key; print(new_virtual_key())')
export BENCH_KEY
WATCH_PIDS="" OWN_PIDS=""
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')

# --- mocks (:fast no delay, :slow 50 ms, :stream 50 ms + 20 ms per chunk) -------------------
FAST_PORT=$(free_port) SLOW_PORT=$(free_port) STREAM_PORT=$(free_port)
start mock-fast "$GW_CPU" "$PY" "$BENCH/mock_upstream.py" --port "$FAST_PORT"; FAST_PID=$LAST_PID
start mock-slow "$GW_CPU" "$PY" "$BENCH/mock_upstream.py" --port "$SLOW_PORT" --delay-ms 50; SLOW_PID=$LAST_PID
start mock-stream "$GW_CPU" "$PY" "$BENCH/mock_upstream.py" --port "$STREAM_PORT" --delay-ms 50 --chunk-delay-ms 20; STREAM_PID=$LAST_PID
MOCK_PIDS="$FAST_PID $SLOW_PID $STREAM_PID"
for p in $FAST_PORT $SLOW_PORT $STREAM_PORT; do
  wait_http "http://127.0.0.1:$p/health" 10 || { log "mock on :$p did not start"; exit 1; }
done
FAST=http://127.0.0.1:$FAST_PORT/v1 SLOW=http://127.0.0.1:$SLOW_PORT/v1 STREAM=http://127.0.0.1:$STREAM_PORT/v1
pin_mocks() { local p; for p in $MOCK_PIDS; do taskset -a -pc "$1" "$p" >/dev/null; done; }

stage_direct() {
  log "== direct: mock on core $GW_CPU, wrk on core $LOAD_CPU"
  pin_mocks "$GW_CPU"
  WATCH_PIDS=$FAST_PID OWN_PIDS="$SLOW_PID $STREAM_PID"
  meta direct "version=mock_upstream"
  run_suite direct "$FAST" gpt-4o-mini "$SLOW" gpt-4o-mini "$STREAM" gpt-4o-mini
  pin_mocks "$LOAD_CPU"
}

# --- Turnout: Tansu broker + snapshot server on the load core, router on the gateway core ---
stage_turnout() {
  log "== turnout: router on core $GW_CPU; mocks, broker, snapshot server, wrk on core $LOAD_CPU"
  pin_mocks "$LOAD_CPU"
  local admin fernet cfg_port router_port t0 t1 reason="" code body
  admin=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
  fernet=$("$PY" -c 'from turnout_common.crypto import generate_key; print(generate_key())')
  start broker "$LOAD_CPU" "$PY" "$BENCH/broker.py" --pidfile "$RUN_DIR/tansu.pid" --log "$RUN_DIR/tansu.log"
  local broker_pid=$LAST_PID i
  for i in $(seq 100); do grep -q '^READY' "$RUN_DIR/broker.log" 2>/dev/null && break; sleep 0.1; done
  if ! grep -q '^READY' "$RUN_DIR/broker.log"; then
    meta turnout "error=broker_did_not_start"; log "  Tansu broker did not start: $(tail -3 "$RUN_DIR/broker.log")"; return 0
  fi
  EXTRA_PIDS+=("$(cat "$RUN_DIR/tansu.pid")")
  local bootstrap; bootstrap=$(awk '/^READY/{print $2}' "$RUN_DIR/broker.log")
  cfg_port=$(free_port); router_port=$(free_port)
  TURNOUT_ADMIN_TOKEN=$admin TURNOUT_ENCRYPTION_KEYS=$fernet \
    start snapshot "$LOAD_CPU" "$PY" "$BENCH/snapshot_server.py" --port "$cfg_port" \
    --fast "$FAST" --slow "$SLOW" --stream "$STREAM"
  local snap_pid=$LAST_PID
  if ! wait_http "http://127.0.0.1:$cfg_port/healthz" 15; then
    log "  snapshot server did not start: $(tail -3 "$RUN_DIR/snapshot.log" | tr '\n' ' ')"
    meta turnout "error=snapshot_server_did_not_start"; return 0
  fi
  mkdir -p "$RUN_DIR/router-state"
  t0=$(now)
  TURNOUT_ROUTER_PORT=$router_port TURNOUT_CONFIG_URL=http://127.0.0.1:$cfg_port \
    TURNOUT_ADMIN_TOKEN=$admin TURNOUT_ENCRYPTION_KEYS=$fernet TURNOUT_KAFKA_BOOTSTRAP=$bootstrap \
    TURNOUT_KAFKA_SESSION_TIMEOUT_MS=2000 TURNOUT_KAFKA_HEARTBEAT_INTERVAL_MS=500 \
    TURNOUT_KAFKA_FETCH_MAX_WAIT_MS=20 TURNOUT_KAFKA_LINGER_MS=5 TURNOUT_KAFKA_REQUEST_TIMEOUT_MS=5000 \
    TURNOUT_STATE_DIR=$RUN_DIR/router-state TURNOUT_LOG_LEVEL=WARNING \
    start router "$GW_CPU" "$PY" -m turnout serve router
  local router_pid=$LAST_PID
  local url=http://127.0.0.1:$router_port
  if wait_http "$url/readyz" "$ROUTER_READY_TIMEOUT"; then
    t1=$(now)
    code=$(curl -s -o "$RUN_DIR/probe.json" -w '%{http_code}' --max-time 10 "$url/v1/chat/completions" \
      -H "Authorization: Bearer $BENCH_KEY" -H 'content-type: application/json' \
      -d '{"model":"bench-fast","messages":[{"role":"user","content":"hi"}]}' || true)
    body=$(head -c 300 "$RUN_DIR/probe.json" 2>/dev/null || true)
    if [[ $code != 200 ]] || ! grep -q '"usage"' "$RUN_DIR/probe.json"; then
      reason="probe chat request returned HTTP $code (need 200 with usage): $body"
    fi
  else
    reason="GET /readyz did not return 200 within ${ROUTER_READY_TIMEOUT}s"
  fi
  if [[ -n $reason ]]; then
    log "  Turnout router NOT benchmarked: $reason"
    log "  (router log: $RUN_DIR/router.log) $(tail -3 "$RUN_DIR/router.log" 2>/dev/null | tr '\n' ' ' | head -c 400)"
    meta turnout "error=$(tr ' \t\n' '___' <<<"$reason" | head -c 200)"
    stop_group "$router_pid"; return 0
  fi
  local idle; idle=$(rss_mb "$router_pid")
  meta turnout "ready_s=$(elapsed "$t0" "$t1") idle_rss_mb=${idle% *} bytecode=$([[ ${COMPILE_BYTECODE:-1} == 1 ]] && echo compiled || echo source) version=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo dev)"
  WATCH_PIDS=$router_pid OWN_PIDS="$MOCK_PIDS $broker_pid $snap_pid $(cat "$RUN_DIR/tansu.pid")"
  COMPLETED=1  # the probe request
  run_suite turnout "$url/v1" bench-fast "$url/v1" bench-slow "$url/v1" bench-stream || true
  ingress_suite turnout "$url/v1" bench-fast "$url/v1" bench-slow || true
  local rss; rss=$(rss_mb "$router_pid")
  sleep 2  # let the router flush its last usage batch
  local records distinct
  read -r records distinct < <("$PY" "$BENCH/topic_count.py" "$bootstrap" 2>/dev/null || echo "? ?")
  meta turnout "rss_after_mb=${rss% *} peak_rss_mb=${rss#* } usage_records=$records usage_request_ids=$distinct requests_completed_by_clients=$COMPLETED"
  log "  turnout.usage.v1: $records usage records, $distinct distinct request ids; clients completed $COMPLETED requests (wrk does not count in-flight ones at the end of a run)"
  stop_group "$router_pid"
}

# --- LiteLLM proxy (throwaway venv), same mocks, same core ----------------------------------
stage_litellm() {
  log "== litellm: proxy on core $GW_CPU; mocks + wrk on core $LOAD_CPU"
  pin_mocks "$LOAD_CPU"
  if [[ ! -x $LITELLM_VENV/bin/litellm ]]; then
    log "  installing litellm[proxy]==$LITELLM_VERSION into $LITELLM_VENV (once)"
    python3 -m venv "$LITELLM_VENV" && "$LITELLM_VENV/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION" \
      || { meta litellm "error=install_failed"; return 0; }
  fi
  local port t0 t1 version cfg=$RUN_DIR/litellm.yaml
  port=$(free_port)
  version=$("$LITELLM_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')
  sed -e "s#@FAST@#$FAST#" -e "s#@SLOW@#$SLOW#" -e "s#@STREAM@#$STREAM#" -e "s#@KEY@#$BENCH_KEY#" \
    "$BENCH/litellm.yaml" >"$cfg"
  t0=$(now)
  LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
    start litellm "$GW_CPU" "$LITELLM_VENV/bin/litellm" --config "$cfg" --port "$port" --num_workers 1
  local pid=$LAST_PID url=http://127.0.0.1:$port
  if ! wait_http "$url/v1/chat/completions" "$LITELLM_READY_TIMEOUT" -H "Authorization: Bearer $BENCH_KEY" \
      -H 'content-type: application/json' -d '{"model":"bench-fast","messages":[{"role":"user","content":"hi"}]}'; then
    log "  LiteLLM did not answer within ${LITELLM_READY_TIMEOUT}s: $(tail -3 "$RUN_DIR/litellm.log")"
    meta litellm "error=not_ready"; stop_group "$pid"; return 0
  fi
  t1=$(now)
  local idle; idle=$(rss_mb "$pid")
  meta litellm "ready_s=$(elapsed "$t0" "$t1") idle_rss_mb=${idle% *} version=$version"
  WATCH_PIDS=$pid OWN_PIDS=$MOCK_PIDS
  run_suite litellm "$url/v1" bench-fast "$url/v1" bench-slow "$url/v1" bench-stream || true
  local rss; rss=$(rss_mb "$pid")
  meta litellm "rss_after_mb=${rss% *} peak_rss_mb=${rss#* }"
  stop_group "$pid"
}

for stage in $STAGES; do "stage_$stage"; done
cleanup
"$PY" "$BENCH/report.py" "$RESULTS" --md "$RESULTS_MD" --date "$START_DATE" --other-max "$OTHER_MAX_PCT" \
  --command "${BENCH_COMMAND:-make bench} (DURATION=$DURATION, STAGES=\"$STAGES\")"

#!/usr/bin/env bash
# Shared limits' cost (issue 19 item 3), in ONE run: the same router, the same load, three
# ways — `none` (a key without limits or budget), `local` (rpm/tpm limits on the key and a
# budget on its user, counted in the router's memory), `redis` (the same limits and budget in
# Redis through TURNOUT_REDIS_URL: one script per request). Non-streaming chat at c=1 and
# c=64 against the mock without delay; prints throughput and p50 per stage with the ratios
# redis/local and redis/none, and writes bench/RESULTS-limits.md. See bench/README.md.
#
# Knobs (defaults in brackets): DURATION [8s] WARMUP [2s] CONCURRENCY ["1 64"] STAGES
# ["none local redis"] REDIS_URL [a redis-server of the run's own on LOAD_CPU, memory only;
# else redis://127.0.0.1:6379/0] GW_CPU [1] LOAD_CPU [0] plus run.sh's QUIET_*,
# OTHER_MAX_PCT, RETRIES. Keys are written under "bench-<pid>:" and deleted.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
STAGES=${STAGES:-"none local redis"}
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-"1 64"}
REDIS_URL=${REDIS_URL:-}
GW_CPU=${GW_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
QUIET_MAX_PCT=${QUIET_MAX_PCT:-10}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-3}
OTHER_MAX_PCT=${OTHER_MAX_PCT:-25}
RETRIES=${RETRIES:-1}
RESULTS_MD=${RESULTS_MD:-$BENCH/RESULTS-limits.md}
RUN_DIR=${RUN_DIR:-/tmp/turnout-bench/limits-$$}
PY=${PY:-$ROOT/.venv/bin/python}
PREFIX="bench-$$:"
mkdir -p "$RUN_DIR"
RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
drop_keys() {
  [[ -z ${REDIS_PIDS:-} ]] || return 0  # the run's own redis-server: gone with it
  "$PY" - "$REDIS_URL" "$PREFIX" <<'PY' || true
import sys, redis
r = redis.Redis.from_url(sys.argv[1])
keys = list(r.scan_iter(match=sys.argv[2] + "*"))
if keys:
    r.delete(*keys)
PY
}
trap 'drop_keys; cleanup' EXIT
trap 'log "interrupted"; exit 130' INT TERM

command -v wrk >/dev/null || { log "wrk not found (apt-get install -y wrk)"; exit 1; }
free_port() { "$PY" -c 'from turnout_common.devinfra import free_port; print(free_port())'; }
BENCH_KEY=$("$PY" -c 'from turnout_common.crypto import new_virtual_key; print(new_virtual_key())')
export BENCH_KEY
WATCH_PIDS="" OWN_PIDS=""
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
ADMIN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
FERNET=$("$PY" -c 'from turnout_common.crypto import generate_key; print(generate_key())')

REDIS_PIDS=""
if [[ -z $REDIS_URL ]] && command -v redis-server >/dev/null; then
  REDIS_PORT=$(free_port)
  start redis "$LOAD_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
  REDIS_PIDS=$LAST_PID REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
FAST_PORT=$(free_port)
start mock-fast "$LOAD_CPU" "$PY" "$BENCH/mock_upstream.py" --port "$FAST_PORT"; MOCK_PID=$LAST_PID
wait_http "http://127.0.0.1:$FAST_PORT/health" 10 || { log "mock did not start"; exit 1; }
FAST=http://127.0.0.1:$FAST_PORT/v1
start broker "$LOAD_CPU" "$PY" "$BENCH/broker.py" --pidfile "$RUN_DIR/tansu.pid" --log "$RUN_DIR/tansu.log"
BROKER_PID=$LAST_PID
for _ in $(seq 100); do grep -q '^READY' "$RUN_DIR/broker.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^READY' "$RUN_DIR/broker.log" || { log "broker did not start"; exit 1; }
EXTRA_PIDS+=("$(cat "$RUN_DIR/tansu.pid")")
BOOTSTRAP=$(awk '/^READY/{print $2}' "$RUN_DIR/broker.log")
declare -A SNAP
for cfg in plain limits; do
  port=$(free_port)
  flag=(); [[ $cfg == limits ]] && flag=(--limits)
  TURNOUT_ADMIN_TOKEN=$ADMIN TURNOUT_ENCRYPTION_KEYS=$FERNET \
    start "snapshot-$cfg" "$LOAD_CPU" "$PY" "$BENCH/snapshot_server.py" --port "$port" \
    --fast "$FAST" --slow "$FAST" --stream "$FAST" "${flag[@]}"
  OWN_PIDS="$OWN_PIDS $LAST_PID"
  wait_http "http://127.0.0.1:$port/healthz" 15 || { log "snapshot server did not start"; exit 1; }
  SNAP[$cfg]=http://127.0.0.1:$port
done
OWN_PIDS="$OWN_PIDS $MOCK_PID $BROKER_PID $(cat "$RUN_DIR/tansu.pid") $REDIS_PIDS"

stage() {  # stage NAME: one router, its suite, stopped
  local name=$1 cfg=limits port url pid
  [[ $name == none ]] && cfg=plain
  port=$(free_port); url=http://127.0.0.1:$port
  mkdir -p "$RUN_DIR/state-$name"
  log "== $name: router on core $GW_CPU (config: $cfg$([[ $name == redis ]] && echo ", Redis"))"
  TURNOUT_ROUTER_PORT=$port TURNOUT_CONFIG_URL=${SNAP[$cfg]} TURNOUT_ADMIN_TOKEN=$ADMIN \
    TURNOUT_ENCRYPTION_KEYS=$FERNET TURNOUT_KAFKA_BOOTSTRAP=$BOOTSTRAP \
    TURNOUT_KAFKA_SESSION_TIMEOUT_MS=2000 TURNOUT_KAFKA_HEARTBEAT_INTERVAL_MS=500 \
    TURNOUT_KAFKA_FETCH_MAX_WAIT_MS=20 TURNOUT_KAFKA_LINGER_MS=5 TURNOUT_KAFKA_REQUEST_TIMEOUT_MS=5000 \
    TURNOUT_STATE_DIR=$RUN_DIR/state-$name TURNOUT_LOG_LEVEL=WARNING \
    TURNOUT_REDIS_URL=$([[ $name == redis ]] && echo "$REDIS_URL") TURNOUT_REDIS_PREFIX=$PREFIX \
    start "router-$name" "$GW_CPU" "$PY" -m turnout serve router
  pid=$LAST_PID
  if ! wait_http "$url/readyz" 30; then
    log "  router did not become ready: $(tail -3 "$RUN_DIR/router-$name.log" | tr '\n' ' ')"
    meta "$name" "error=not_ready"; stop_group "$pid"; return 0
  fi
  WATCH_PIDS=$pid
  warmup "$name" chat "$url/v1/chat/completions" bench-fast 0 || true
  if ((LAST_ERRS > 0)); then log "  warm-up errors: stage skipped"; meta "$name" "error=warmup"; stop_group "$pid"; return 0; fi
  local c
  for c in $CONCURRENCY; do wrk_run "$name" chat "$url/v1/chat/completions" bench-fast 0 "$c"; done
  if [[ $name == redis ]]; then
    local fb; fb=$(curl -s "$url/metrics" | awk '/^turnout_router_shared_limits_fallback_total /{print $2}')
    meta "$name" "fallbacks=${fb:-?}"
    log "  requests that fell back to local limits: ${fb:-?}"
  fi
  stop_group "$pid"
}

for s in $STAGES; do stage "$s"; done
cleanup
"$PY" "$BENCH/report_limits.py" "$RESULTS" --md "$RESULTS_MD" --date "$START_DATE" \
  --command "${BENCH_COMMAND:-bash bench/run_limits.sh} (DURATION=$DURATION)"

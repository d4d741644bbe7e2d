#!/usr/bin/env bash
# Metering ingest benchmark against a standalone metering service (see bench/README.md):
# a Tansu broker, the snapshot server (config bootstrap), a fresh PostgreSQL database
# (dropped afterwards), `turnout migrate`, `turnout serve metering` pinned to GW_CPU, then
# metering_ingest.py: N usage records (+ DUPLICATES redeliveries) until metering.usage_log
# holds exactly N new rows.
#
# Knobs: N [100000] DUPLICATES [0.01] GW_CPU [1] LOAD_CPU [0] PG_DSN [postgresql://postgres@127.0.0.1:5432/postgres]
#        READY_TIMEOUT [60] TIMEOUT [300] RUN_DIR [/tmp/turnout-bench/metering-PID]
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
N=${N:-100000}
DUPLICATES=${DUPLICATES:-0.01}
GW_CPU=${GW_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
PG_DSN=${PG_DSN:-postgresql://postgres@127.0.0.1:5432/postgres}
READY_TIMEOUT=${READY_TIMEOUT:-60}
TIMEOUT=${TIMEOUT:-300}
RUN_DIR=${RUN_DIR:-/tmp/turnout-bench/metering-$$}
PY=${PY:-$ROOT/.venv/bin/python}
mkdir -p "$RUN_DIR"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
DB=turnout_bench_$$
db() {  # db create|drop
  "$PY" - "$PG_DSN" "$DB" "$1" <<'EOF'
import asyncio, sys
import asyncpg
async def main(dsn, name, op):
    conn = await asyncpg.connect(dsn)
    try:
        sql = f'CREATE DATABASE "{name}"' if op == "create" else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        await conn.execute(sql)
    finally:
        await conn.close()
asyncio.run(main(*sys.argv[1:]))
EOF
}
finish() { cleanup; db drop 2>/dev/null || true; }
trap finish EXIT
trap 'log "interrupted"; exit 130' INT TERM

DSN=$("$PY" -c 'import sys; from urllib.parse import urlsplit, urlunsplit
p = urlsplit(sys.argv[1]); print(urlunsplit((p.scheme, p.netloc, "/" + sys.argv[2], p.query, p.fragment)))' "$PG_DSN" "$DB")
db create
"$PY" -m turnout migrate --database-url "$DSN" --service metering >"$RUN_DIR/migrate.log" 2>&1 \
  || { log "migration failed: $(tail -3 "$RUN_DIR/migrate.log")"; exit 1; }

start broker "$LOAD_CPU" "$PY" "$BENCH/broker.py" --pidfile "$RUN_DIR/tansu.pid" --log "$RUN_DIR/tansu.log"
for _ in $(seq 100); do grep -q '^READY' "$RUN_DIR/broker.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^READY' "$RUN_DIR/broker.log" || { log "broker did not start"; exit 1; }
EXTRA_PIDS+=("$(cat "$RUN_DIR/tansu.pid")")
BOOTSTRAP=$(awk '/^READY/{print $2}' "$RUN_DIR/broker.log")

free_port() { "$PY" -c 'from turnout_common.devinfra import free_port; print(free_port())'; }
ADMIN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
FERNET=$("$PY" -c 'from turnout_common.crypto import generate_key; print(generate_key())')
BENCH_KEY=$("$PY" -c 'from turnout_common.crypto import new_virtual_key; print(new_virtual_key())')
CFG_PORT=$(free_port) METERING_PORT=$(free_port)
MOCK=http://127.0.0.1:9/v1  # never called: metering only reads the catalog
TURNOUT_ADMIN_TOKEN=$ADMIN TURNOUT_ENCRYPTION_KEYS=$FERNET BENCH_KEY=$BENCH_KEY \
  start snapshot "$LOAD_CPU" "$PY" "$BENCH/snapshot_server.py" --port "$CFG_PORT" \
  --fast "$MOCK" --slow "$MOCK" --stream "$MOCK"
wait_http "http://127.0.0.1:$CFG_PORT/healthz" 15 || { log "snapshot server did not start"; exit 1; }

t0=$(now)
TURNOUT_DATABASE_URL=$DSN TURNOUT_METERING_PORT=$METERING_PORT TURNOUT_CONFIG_URL=http://127.0.0.1:$CFG_PORT \
  TURNOUT_ADMIN_TOKEN=$ADMIN TURNOUT_ENCRYPTION_KEYS=$FERNET TURNOUT_KAFKA_BOOTSTRAP=$BOOTSTRAP \
  TURNOUT_KAFKA_SESSION_TIMEOUT_MS=2000 TURNOUT_KAFKA_HEARTBEAT_INTERVAL_MS=500 \
  TURNOUT_KAFKA_FETCH_MAX_WAIT_MS=20 TURNOUT_KAFKA_LINGER_MS=5 TURNOUT_KAFKA_REQUEST_TIMEOUT_MS=5000 \
  TURNOUT_STATE_DIR=$RUN_DIR/state TURNOUT_LOG_LEVEL=WARNING \
  start metering "$GW_CPU" "$PY" -m turnout serve metering
METERING_PID=$LAST_PID
if ! wait_http "http://127.0.0.1:$METERING_PORT/readyz" "$READY_TIMEOUT"; then
  log "metering not ready within ${READY_TIMEOUT}s: $(tail -5 "$RUN_DIR/metering.log" | tr '\n' ' ')"
  exit 1
fi
log "metering ready in $(elapsed "$t0" "$(now)") s (pid $METERING_PID, core $GW_CPU); producing $N records"
START=$(date -u '+%Y-%m-%d %H:%M UTC')
OUT=$(taskset -c "$LOAD_CPU" "$PY" "$BENCH/metering_ingest.py" --bootstrap "$BOOTSTRAP" --n "$N" \
  --duplicates "$DUPLICATES" --db "$DSN" --timeout "$TIMEOUT") || RC=$?
printf '%s\n' "$OUT"
read -r _ rss hwm _ < <("$PY" "$BENCH/procstat.py" "$METERING_PID")
log "metering RSS $((rss / 1024)) MB (peak $((hwm / 1024)) MB)"
{
  echo "# Metering ingest results"
  echo
  echo "- Date: $START; machine: $(nproc) vCPU $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
  echo "- Command: \`N=$N DUPLICATES=$DUPLICATES bash bench/run_metering.sh\` (metering pinned to core $GW_CPU;"
  echo "  broker, producer on core $LOAD_CPU; PostgreSQL unpinned)"
  echo "- Metering RSS after: $((rss / 1024)) MB (peak $((hwm / 1024)) MB)"
  echo
  echo '```'
  printf '%s\n' "$OUT"
  echo '```'
} >"${RESULTS_MD:-$BENCH/RESULTS-metering.md}"
exit "${RC:-0}"

# Shared by the end-to-end scripts: assertions, a scratch PostgreSQL database,
# a Redis database of their own, and nomad-sim. Source it after setting
# NOMATRON and SIM; it sets tmp, db, rdb, pg, nomad, sim_pid and a cleanup trap.
set -uo pipefail
SRC=${NOMATRON_SOURCE_DIR:?}
: "${PG_ADMIN_CONNINFO:?set by deploy/dev/test: an admin conninfo for a scratch database}"
: "${NOMATRON_REDIS_PORT:?set by deploy/dev/test}"

fails=0 passes=0
ok() { passes=$((passes + 1)); printf 'ok   %s\n' "$1"; }
bad() { fails=$((fails + 1)); printf 'FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '     %s\n' "$2"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
contains() { grep -qF -- "$2" <<<"$1"; }
matches() { grep -qE -- "$2" <<<"$1"; }
equals() { [ "$1" = "$2" ] || { printf '     expected [%s], got [%s]\n' "$2" "$1"; return 1; }; }
show() { printf '%s\n' "$1" | sed 's/^/     | /'; }
# wait_for SECONDS COMMAND...: polls every 0.1 s until COMMAND succeeds.
wait_for() { local n=$(($1 * 10)); shift; while ((n-- > 0)); do "$@" && return 0; sleep 0.1; done; return 1; }
finish() { printf '%d passed, %d failed\n' "$passes" "$fails"; [ "$fails" = 0 ]; }

tmp=$(mktemp -d)
db=e2e_$$_$RANDOM
sim_pid=
rdb=
e2e_cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  psql "$PG_ADMIN_CONNINFO" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  if [ -n "$rdb" ]; then
    redis-cli -p "$NOMATRON_REDIS_PORT" -n "$rdb" flushdb >/dev/null 2>&1
    redis-cli -p "$NOMATRON_REDIS_PORT" del "nomatron:e2e:db:$rdb" >/dev/null 2>&1
  fi
  rm -rf "$tmp"
}
trap e2e_cleanup EXIT

# A Redis database no other test uses now (4..15; unit tests use 3).
for n in $(seq 4 15); do
  if [ "$(redis-cli -p "$NOMATRON_REDIS_PORT" set "nomatron:e2e:db:$n" $$ NX EX 900)" = OK ]; then rdb=$n; break; fi
done
[ -n "$rdb" ] || { echo "no free Redis database"; exit 1; }
redis-cli -p "$NOMATRON_REDIS_PORT" -n "$rdb" flushdb >/dev/null

psql "$PG_ADMIN_CONNINFO" -qc "CREATE DATABASE $db OWNER nomatron" >/dev/null || { echo "cannot create $db"; exit 1; }
pg="host=127.0.0.1 port=${NOMATRON_PG_PORT:-5441} user=nomatron dbname=$db"
sql() { psql "$pg" -XAtqc "$1"; }

# start_sim [nomad-sim args...]: starts nomad-sim on an ephemeral port with
# $SIM_JOBS (default: the dev jobs); sets nomad.
start_sim() {
  "$SIM" --listen 127.0.0.1:0 --jobs "${SIM_JOBS:-$SRC/deploy/dev/nomad-jobs.json}" --log "$tmp/sim.log" "$@" \
    >"$tmp/sim.out" 2>&1 &
  sim_pid=$!
  wait_for 5 grep -q listening "$tmp/sim.out"
  local port
  port=$(grep -Eo '[0-9]+$' "$tmp/sim.out" | head -n1)
  [ -n "$port" ] || { cat "$tmp/sim.out"; echo "nomad-sim did not start"; exit 1; }
  nomad="http://127.0.0.1:$port"
}

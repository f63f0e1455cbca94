#!/usr/bin/env bash
# End-to-end deploy throughput and latency (docs/BENCHMARKS.md, "Queue and workers").
# Not run by ctest.
#
#   usage: tests/bench/deploys.sh BUILD_DIR
#     BUILD_DIR holds bin/nomatron, bin/nomad-sim and bin/bench_queue (a Release or
#     RelWithDebInfo build; -fno-omit-frame-pointer makes the profile readable).
#   environment (defaults in brackets):
#     PROCS [2]          worker processes (`nomatron worker`)
#     THREADS [4]        worker threads per process (config `workers:`)
#     JOBS [100]         Nomad jobs, one deploy at a time each (nomatron serialises per job)
#     ROUNDS [3]         deploys per job: REQUESTS = JOBS x ROUNDS, all enqueued at once
#     HEALTH_DELAY [0]   nomad-sim --health-delay (ms): 0 = healthy at once
#     EVAL_DELAY [0]     nomad-sim --eval-delay (ms)
#     PERF [1]           perf record -a -g (the whole machine) from just before the enqueue to the
#                        last terminal request: CPU by process kind and the hottest symbols
#     BACKLOG [0]        1: the workers are stopped (SIGSTOP) while the shell enqueues and
#                        continued after, so deploys/s is the workers' alone, from a full queue
#                        (latencies then include the wait and mean nothing)
#     PG_ADMIN_CONNINFO  [host=127.0.0.1 port=$NOMATRON_PG_PORT|5441 user=postgres dbname=postgres]
#                        a scratch database is created there and dropped at the end
#
# What it does: a private Redis on a free port (so INFO commandstats counts only
# this run), a scratch PostgreSQL database, nomad-sim with JOBS jobs, PROCS worker
# processes (started first, so they are waiting), then all requests piped at once
# through `nomatron shell --workers 0`. Printed: the floors (one Redis round trip,
# one INSERT+COMMIT), deploys/s from the first request.created to the last terminal
# event (PostgreSQL's clock_timestamp(), the audit trail's own times), the p50/p99 of
# deploy.registered - request.created per request (approvals: 0, so a request is
# approved, and queued, when it is created), and per deploy: PostgreSQL
# transactions, Redis commands, Nomad requests, and CPU time per process kind.
set -uo pipefail
BUILD=${1:?usage: deploys.sh BUILD_DIR}
NOMATRON=$BUILD/bin/nomatron SIM=$BUILD/bin/nomad-sim BENCHQ=$BUILD/bin/bench_queue
for b in "$NOMATRON" "$SIM" "$BENCHQ"; do [ -x "$b" ] || { echo "missing $b (build nomatron nomad-sim bench_queue)"; exit 1; }; done
PROCS=${PROCS:-2} THREADS=${THREADS:-4} JOBS=${JOBS:-100} ROUNDS=${ROUNDS:-3}
HEALTH_DELAY=${HEALTH_DELAY:-0} EVAL_DELAY=${EVAL_DELAY:-0} PERF=${PERF:-1} BACKLOG=${BACKLOG:-0}
REQUESTS=$((JOBS * ROUNDS))
ADMIN=${PG_ADMIN_CONNINFO:-"host=127.0.0.1 port=${NOMATRON_PG_PORT:-5441} user=postgres dbname=postgres"}
pport=$(sed -nE 's/.*port=([0-9]+).*/\1/p' <<<"$ADMIN"); pport=${pport:-5432}
export NOMATRON_LOG_LEVEL=${NOMATRON_LOG_LEVEL:-warn}

tmp=$(mktemp -d) db=bench_deploys_$$ rport= sim_pid= perf_pid=
procs=()
cleanup() {
  [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null
  for p in "${procs[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${procs[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  [ -n "$rport" ] && redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
wait_for() { local n=$(($1 * 10)); shift; while ((n-- > 0)); do "$@" && return 0; sleep 0.1; done; return 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU seconds (user+system) of a list of pids, from /proc
cpu_of() {
  local t=0 p f
  for p in "$@"; do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    f=${f##*) }
    read -r -a a <<<"$f"
    t=$((t + a[11] + a[12]))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)

# --- services ---
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
  --maxmemory-policy noeviction --dir "$tmp" --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
wait_for 5 bash -c "redis-cli -p $rport ping 2>/dev/null | grep -q PONG" || { echo "redis did not start"; exit 1; }
redis_pid=$(cat "$tmp/redis.pid")
psql "$ADMIN" -qc "CREATE DATABASE $db OWNER nomatron" >/dev/null || { echo "cannot create $db via $ADMIN"; exit 1; }
pg="host=127.0.0.1 port=$pport user=nomatron dbname=$db"
sql() { printf . >>"$tmp/sqlcount"; psql "$pg" -XAtqc "$1"; }

SRC=$(cd "$(dirname "$0")/../.." && pwd)
# JOBS copies of the dev file's staging "web" job (as tests/e2e/faults.sh makes its 100).
python3 - "$SRC/deploy/dev/nomad-jobs.json" "$JOBS" "$tmp/jobs.json" <<'PY'
import json, sys, copy
web = next(j for j in json.load(open(sys.argv[1])) if j["ID"] == "web" and j["Namespace"] == "staging")
out = []
for i in range(int(sys.argv[2])):
    j = copy.deepcopy(web)
    j["ID"] = j["Name"] = "job%03d" % i
    j["TaskGroups"][0]["Count"] = 1
    out.append(j)
json.dump(out, open(sys.argv[3], "w"))
PY
"$SIM" --listen 127.0.0.1:0 --jobs "$tmp/jobs.json" --health-delay "$HEALTH_DELAY" --eval-delay "$EVAL_DELAY" \
  --log "$tmp/sim.log" >"$tmp/sim.out" 2>&1 &
sim_pid=$!
wait_for 5 grep -q listening "$tmp/sim.out" || { cat "$tmp/sim.out"; exit 1; }
nomad="http://127.0.0.1:$(grep -Eo '[0-9]+$' "$tmp/sim.out" | head -n1)"

cfg=$tmp/nomatron.yaml
{
  printf 'redis: redis://127.0.0.1:%s/0\npostgres: "%s connect_timeout=5"\nworkers: %s\nlimits: {open_requests: 0, commands_per_minute: 0}\n' "$rport" "$pg" "$THREADS"
  printf 'environments:\n  staging: {nomad: {address: "%s", namespace: staging, timeout: 10s}}\njobs:\n' "$nomad"
  for ((i = 0; i < JOBS; i++)); do
    printf '  job%03d: {tasks: [web], image: registry.example.com/job%03d}\n' "$i" "$i"
  done
} >"$cfg"
"$NOMATRON" migrate --config "$cfg" >/dev/null || { echo "migrate failed"; exit 1; }

# --- floors ---
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL port $pport" \
  "(fsync=$(sql 'SHOW fsync'), synchronous_commit=$(sql 'SHOW synchronous_commit'))"
"$BENCHQ" --floor-only --redis "redis://127.0.0.1:$rport/14" --cycles 20000 | sed -n 2p | sed 's/^floor  /floor: Redis/'
sql "CREATE TABLE bench_floor (id int)"
printf 'INSERT INTO bench_floor VALUES (1);\n' >"$tmp/floor.sql"
(cd "$tmp" && pgbench -n -c 1 -t 200 -f floor.sql "$pg" >/dev/null 2>&1 &&
  pgbench -n -M prepared -c 1 -t 5000 -f floor.sql -l --log-prefix=floorlog "$pg" >/dev/null 2>&1) ||
  echo "pgbench failed"
# per-transaction log: client_id transaction_no time(us) script_no time_epoch time_us
cat "$tmp"/floorlog.* 2>/dev/null | awk '{print $3/1000}' | sort -g | awk '
  {v[NR]=$1} END {if (NR) printf "floor: PostgreSQL one INSERT+COMMIT (pgbench, 5000)  p50 %.3f ms  p99 %.3f ms  max %.2f ms\n",
  v[int(NR*0.5+0.5)], v[int(NR*0.99+0.5)], v[NR]}'
sql "DROP TABLE bench_floor"

# --- workers ---
for ((p = 0; p < PROCS; p++)); do
  "$NOMATRON" worker --config "$cfg" 2>>"$tmp/worker.log" &
  procs+=($!)
done
# Ready = every thread blocked in XREADGROUP (Redis 7.0 creates a consumer only when it is first served).
readers() { redis-cli -p "$rport" client list 2>/dev/null | grep -c 'cmd=xreadgroup'; }
wait_for 20 bash -c "[ \"\$(redis-cli -p $rport client list 2>/dev/null | grep -c cmd=xreadgroup)\" -ge $((PROCS * THREADS)) ]" ||
  { echo "workers did not all start ($(readers) of $((PROCS * THREADS)) waiting for work)"; tail "$tmp/worker.log"; exit 1; }
sleep 1

# counters before
redis-cli -p "$rport" config resetstat >/dev/null
sql_before=$(wc -c <"$tmp/sqlcount" 2>/dev/null || echo 0)
x0=$(sql "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
sim0=$(wc -l <"$tmp/sim.log")
backends() { sql "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"; }
b0=$(cpu_of $(backends)) w0=$(cpu_of "${procs[@]}") s0=$(cpu_of "$sim_pid") r0=$(cpu_of "$redis_pid")
if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
  perf record -a -g -F 499 -o "$tmp/perf.data"  >/dev/null 2>"$tmp/perf.err" &
  perf_pid=$!
  sleep 0.5
fi

# --- the run ---
for ((r = 1; r <= ROUNDS; r++)); do for ((i = 0; i < JOBS; i++)); do
  printf 'deploy job%03d r%s to staging\n' "$i" "$r"
done; done >"$tmp/load.txt"
t0=$(date +%s.%N)
[ "$BACKLOG" = 1 ] && kill -STOP "${procs[@]}"
"$NOMATRON" shell --config "$cfg" --workers 0 --timeout 1 <"$tmp/load.txt" >"$tmp/shell.out" 2>"$tmp/shell.log"
t1=$(date +%s.%N)
start_sql="(SELECT min(at) FROM audit_events WHERE action = 'request.created')"
if [ "$BACKLOG" = 1 ]; then
  # PostgreSQL's clock, as the audit events use, read just before the workers go on.
  start_sql="'$(sql "SELECT clock_timestamp()")'::timestamptz"
  kill -CONT "${procs[@]}"
fi
terminal() { sql "SELECT count(*) FROM requests WHERE state IN ('succeeded','failed','cancelled')"; }
all_ended() { [ "$(terminal)" = "$REQUESTS" ]; }
wait_for 900 all_ended || echo "TIMEOUT: $(terminal) of $REQUESTS requests ended"
t2=$(date +%s.%N)
b1=$(cpu_of $(backends)) w1=$(cpu_of "${procs[@]}") s1=$(cpu_of "$sim_pid") r1=$(cpu_of "$redis_pid")
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null; perf_pid=; fi
# Backends report their statistics when they exit (otherwise up to 10 s later): stop the workers first.
for p in "${procs[@]}"; do kill "$p" 2>/dev/null; done
for p in "${procs[@]}"; do wait "$p" 2>/dev/null; done
procs=()
sleep 1
nsql=$(($(wc -c <"$tmp/sqlcount") - sql_before))
x1=$(sql "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
sim1=$(wc -l <"$tmp/sim.log")

# --- figures ---
echo "run: $PROCS worker processes x $THREADS threads, $JOBS jobs x $ROUNDS = $REQUESTS deploys," \
  "nomad-sim --health-delay $HEALTH_DELAY --eval-delay $EVAL_DELAY"
sql "SELECT state, count(*) FROM requests GROUP BY 1 ORDER BY 1" | sed 's/^/  requests /'
awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$REQUESTS" 'BEGIN {
  printf "wall clock: shell enqueued %d in %.2f s (it then waits --timeout 1 s); all ended %.2f s after the shell started\n", n, b-a, c-a }'
psql "$pg" -XAtq -F ' ' <<SQL
WITH c AS (SELECT request_id, at FROM audit_events WHERE action = 'request.created'),
     r AS (SELECT request_id, at FROM audit_events WHERE action = 'deploy.registered'),
     e AS (SELECT request_id, max(at) AS at FROM audit_events
           WHERE action IN ('deploy.succeeded', 'deploy.failed', 'deploy.cancelled') GROUP BY 1),
     lat AS (SELECT extract(epoch FROM r.at - c.at) * 1000 AS ms FROM c JOIN r USING (request_id)),
     tot AS (SELECT extract(epoch FROM e.at - c.at) * 1000 AS ms FROM c JOIN e USING (request_id))
SELECT format('enqueue: %s requests created in %s s = %s/s',
              count(*), round(extract(epoch FROM max(at) - min(at))::numeric, 3),
              round(count(*) / nullif(extract(epoch FROM max(at) - min(at)), 0)::numeric)) FROM c
UNION ALL
SELECT format('THROUGHPUT: %s deploys ended in %s s (%s -> last terminal event) = %s deploys/s',
              (SELECT count(*) FROM e), round(extract(epoch FROM (SELECT max(at) FROM e) - $start_sql)::numeric, 3),
              CASE WHEN $BACKLOG = 1 THEN 'workers continued' ELSE 'first request.created' END,
              round((SELECT count(*) FROM e) / nullif(extract(epoch FROM (SELECT max(at) FROM e) - $start_sql), 0)::numeric))
UNION ALL
SELECT format('LATENCY approved -> registered in Nomad (deploy.registered - request.created), %s requests: p50 %s ms  p99 %s ms  max %s ms',
              count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1)) FROM lat
UNION ALL
SELECT format('  approved -> terminal: p50 %s ms  p99 %s ms',
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)) FROM tot;
SQL
echo "  first round only (one request per job, none waits for an earlier one of its job):"
psql "$pg" -XAtq <<SQL
WITH first AS (SELECT min(id) AS id FROM requests GROUP BY job),
     lat AS (SELECT extract(epoch FROM r.at - c.at) * 1000 AS ms
             FROM audit_events c JOIN audit_events r USING (request_id) JOIN first f ON f.id = c.request_id
             WHERE c.action = 'request.created' AND r.action = 'deploy.registered')
SELECT format('  approved -> registered, %s requests: p50 %s ms  p99 %s ms', count(*),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)) FROM lat;
SQL
echo "  one deploy's steps (medians over all requests, ms after request.created):"
psql "$pg" -XAtq <<SQL
WITH c AS (SELECT request_id, at FROM audit_events WHERE action = 'request.created'),
     s AS (SELECT e.action, count(*) AS n,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.at - c.at) * 1000) AS ms
           FROM audit_events e JOIN c USING (request_id) GROUP BY e.action)
SELECT format('    %-22s %8s ms   (%s events)', action, round(ms::numeric, 1), n) FROM s ORDER BY ms;
SQL

echo "per deploy (counters over the run, shell's request creation included):"
awk -v x="$((x1 - x0 - nsql))" -v n="$REQUESTS" 'BEGIN { printf "  PostgreSQL transactions: %d = %.1f per deploy (xact_commit+rollback of the database, this script'"'"'s own polling taken out; a statement outside BEGIN counts as one)\n", x, x/n }'
redis-cli -p "$rport" info commandstats | tr -d '\r' | grep -v resetstat | awk -F'[:=,]' -v n="$REQUESTS" '
  /^cmdstat_/ { sub("cmdstat_", "", $1); calls[$1] = $3; usec[$1] = $5; total += $3; tu += $5 }
  END { printf "  Redis commands: %d = %.1f per deploy, %.0f us of Redis CPU per deploy (its own accounting)\n", total, total/n, tu/n;
        for (c in calls) printf "    %6.2f per deploy  %-11s %5.1f us each\n", calls[c]/n, c, usec[c]/calls[c] | "sort -gr" }'
tail -n +"$((sim0 + 1))" "$tmp/sim.log" | head -n "$((sim1 - sim0))" >"$tmp/sim.run.log"
awk -v n="$REQUESTS" '{ p = $2; sub(/\?.*/, "", p); gsub(/\/[0-9a-f]+-[0-9a-f-]+/, "/ID", p); gsub(/job[0-9]+/, "JOB", p);
       k[$1 " " p]++; t++ }
  END { printf "  Nomad requests: %d = %.1f per deploy\n", t, t/n; for (x in k) printf "    %6.2f per deploy  %s\n", k[x]/n, x | "sort -gr" }' \
  "$tmp/sim.run.log"
awk -v hz="$hz" -v n="$REQUESTS" -v w="$((w1 - w0))" -v b="$((b1 - b0))" -v s="$((s1 - s0))" -v r="$((r1 - r0))" \
    -v secs="$(awk -v a="$t0" -v c="$t2" 'BEGIN{print c-a}')" 'BEGIN {
  tot = w + b + s + r;
  printf "  CPU per deploy: workers %.0f us, PostgreSQL backends %.0f us, nomad-sim %.0f us, Redis %.0f us = %.0f us\n",
    w/hz/n*1e6, b/hz/n*1e6, s/hz/n*1e6, r/hz/n*1e6, tot/hz/n*1e6;
  printf "  CPU busy over the run: %.2f of %d cores (these processes; the shell and psql polling not counted)\n",
    tot/hz/secs, '"$(nproc)"' }'
if [ -s "$tmp/perf.data" ]; then
  echo "profile: perf record -a -g over the run, samples by process (self time, all CPUs):"
  perf report -i "$tmp/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -8 | sed 's/^/  /'
  echo "profile: nomatron's samples by library:"
  perf report -i "$tmp/perf.data" --no-children --comms nomatron --sort dso --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -8 | sed 's/^/  /'
  echo "profile: postgres's samples, hottest symbols:"
  perf report -i "$tmp/perf.data" --no-children --comms postgres --sort symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -12 | sed 's/^/  /'
fi
grep -cE '"level":"(warn|error)"|WARN|ERROR' "$tmp/worker.log" | sed 's/^/worker log warnings+errors: /'

#!/usr/bin/env bash
# Fault tests (SPEC §6): nothing lost, nothing done twice. Each run gets its
# own Redis and PostgreSQL on ephemeral ports, so they can be killed,
# restarted and stopped; leases are short (queue.lease 2s).
#   usage: faults.sh NOMATRON NOMAD_SIM
NOMATRON=$1 SIM=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=../../deploy/dev/lib.sh
. "$SRC/deploy/dev/lib.sh"
export NOMATRON_LOG_LEVEL=info
chmod 755 "$tmp"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port) pport=$(free_port)
pgdata=$tmp/pg pgbin=$(nm_pgbin)

redis_start() {
  redis-server --port "$rport" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
    --maxmemory-policy noeviction --dir "$tmp" --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
  wait_for 5 bash -c "redis-cli -p $rport ping 2>/dev/null | grep -q PONG"
}
redis_stop() { redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true; }
pg_start() {
  nm_as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 30 \
    -o "-p $pport -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
}
pg_stop() { nm_as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true; }
procs=()
faults_cleanup() {
  for p in "${procs[@]}"; do kill -9 "$p" 2>/dev/null; done
  redis_stop
  pg_stop
  e2e_cleanup
}
trap faults_cleanup EXIT

redis_start || { echo "private Redis did not start"; exit 1; }
if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres -m 700 "$pgdata"; else install -d -m 700 "$pgdata"; fi
nm_as_pg "$pgbin/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-sync >/dev/null || { echo "initdb failed"; exit 1; }
pg_start || { cat "$pgdata/server.log"; exit 1; }
fpg="host=127.0.0.1 port=$pport user=postgres dbname=postgres"
fsql() { psql "$fpg" -XAtqc "$1"; }

# 100 jobs (job00..job99) in namespace staging, plus web and api from the dev file.
python3 - "$SRC/deploy/dev/nomad-jobs.json" "$tmp/jobs.json" <<'PY'
import json, sys, copy
jobs = json.load(open(sys.argv[1]))
web = next(j for j in jobs if j["ID"] == "web" and j["Namespace"] == "staging")
out = [j for j in jobs]
for i in range(100):
    j = copy.deepcopy(web)
    j["ID"] = j["Name"] = "job%02d" % i
    j["TaskGroups"][0]["Count"] = 1
    out.append(j)
json.dump(out, open(sys.argv[2], "w"))
PY
"$SIM" --listen 127.0.0.1:0 --jobs "$tmp/jobs.json" --health-delay 1500 --log "$tmp/sim.log" >"$tmp/sim.out" 2>&1 &
sim_pid=$!
wait_for 5 grep -q listening "$tmp/sim.out"
nomad="http://127.0.0.1:$(grep -Eo '[0-9]+$' "$tmp/sim.out" | head -n1)"

cfg=$tmp/nomatron.yaml
{
  printf 'redis: redis://127.0.0.1:%s/0\npostgres: "%s connect_timeout=2"\nworkers: %s\n' "$rport" "$fpg" "${WORKERS:-1}"
  printf 'queue: {lease: 2s, reconcile: 1s}\nlimits: {open_requests: 0, commands_per_minute: 0}\nenvironments:\n'
  printf '  staging: {nomad: {address: "%s", namespace: staging, timeout: 5s}}\n' "$nomad"
  printf '  production: {nomad: {address: "%s", namespace: default, timeout: 5s}}\njobs:\n' "$nomad"
  printf '  web: {tasks: [web], image: registry.example.com/web}\n  api: {tasks: [api], image: registry.example.com/api}\n'
  for i in $(seq -w 0 99); do printf '  job%s: {tasks: [web], image: registry.example.com/job%s}\n' "$i" "$i"; done
} >"$cfg"
"$NOMATRON" migrate --config "$cfg" >/dev/null || { echo "migrate failed"; exit 1; }

state_of() { fsql "SELECT state FROM requests WHERE id = $1"; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
phase_is() { [ "$(fsql "SELECT state || '/' || phase FROM requests WHERE id = $1")" = "$2" ]; }
# registrations of JOB in NAMESPACE, from the job's versions in the simulator
versions() { curl -fsS "$nomad/v1/job/$1/versions?namespace=$2" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Versions"]))'; }
enqueue() { "$NOMATRON" shell --config "$cfg" --workers 0 --timeout "${1:-1}" 2>>"$tmp/shell.log"; }
worker() { WORKERS=${1:-1} "$NOMATRON" worker --config "$cfg" 2>>"$tmp/worker.log" & procs+=($!); }

# --- 1. kill -9 a worker in the middle of a deployment watch ---
printf 'deploy web v2 to staging\n' | enqueue >/dev/null
worker
wa=${procs[-1]}
check "kill -9: D-1 is being watched" wait_for 15 phase_is 1 running/rolling
kill -9 "$wa"; wait "$wa" 2>/dev/null
worker
check "kill -9: another worker finishes it" wait_for 30 is_state 1 succeeded
check "kill -9: the simulator saw exactly one registration" equals "$(versions web staging)" 2
check "kill -9: resumed, not restarted" grep -q 'resuming a request whose worker stopped' "$tmp/worker.log"

# --- 2. the same work delivered 3 times: one execution ---
printf 'deploy api v2 to staging\n' | enqueue >/dev/null
for _ in 1 2; do redis-cli -p "$rport" xadd nomatron:work '*' kind request id 2 >/dev/null; done
check "duplicates: D-2 succeeds" wait_for 30 is_state 2 succeeded
check "duplicates: registered once" equals "$(versions api staging)" 2
check "duplicates: one request in PostgreSQL" equals "$(fsql "SELECT count(*) FROM requests WHERE job = 'api'")" 1
kill "${procs[-1]}"; wait "${procs[-1]}" 2>/dev/null

# --- 3. Redis restarted with its data gone while requests are queued ---
printf 'deploy web v3 to staging\ndeploy api v3 to staging\ndeploy web v3 to production\n' | enqueue >/dev/null
check "redis loss: three requests queued" equals "$(fsql "SELECT count(*) FROM requests WHERE state = 'queued'")" 3
redis_stop
redis_start
check "redis loss: the work stream is gone" equals "$(redis-cli -p "$rport" exists nomatron:work)" 0
worker
check "redis loss: all three still run" wait_for 40 bash -c \
  "[ \"\$(psql '$fpg' -XAtqc \"SELECT count(*) FROM requests WHERE id IN (3,4,5) AND state = 'succeeded'\")\" = 3 ]"
check "redis loss: each ran once (web staging)" equals "$(versions web staging)" 3
check "redis loss: each ran once (api staging)" equals "$(versions api staging)" 3
check "redis loss: each ran once (web production)" equals "$(versions web default)" 2
check "redis loss: the reconciler put them back" grep -q 'reconciler put lost work back' "$tmp/worker.log"

# --- 4. PostgreSQL stopped for 10 s under load ---
printf 'deploy api v4 to staging\n' | enqueue >/dev/null
check "postgres down: D-6 is running" wait_for 15 phase_is 6 running/rolling
pg_stop
t0=$SECONDS
out=$(printf 'deploy web v4 to staging\n' | enqueue 5); rc=$?
show "$out"
check "postgres down: a new command is refused" contains "$out" "PostgreSQL is unavailable"
check "postgres down: the refusal is a failure exit" equals "$rc" 1
sleep $((10 - (SECONDS - t0) > 0 ? 10 - (SECONDS - t0) : 0))
pg_start
check "postgres back: the request in flight finishes" wait_for 40 is_state 6 succeeded
check "postgres back: registered once" equals "$(versions api staging)" 4
check "postgres back: nothing half-recorded" equals "$(fsql "SELECT count(*) FROM requests")" 6
out=$("$NOMATRON" audit verify --config "$cfg" 2>&1)
check "postgres back: audit chain intact" contains "$out" "intact"
kill "${procs[-1]}"; wait "${procs[-1]}" 2>/dev/null

# --- 5. three worker processes, 300 requests over 100 jobs at once ---
for r in 1 2 3; do for i in $(seq -w 0 99); do printf 'deploy job%s r%s to staging\n' "$i" "$r"; done; done >"$tmp/load.txt"
# A simulator of its own with quick health, so the run measures nomatron rather than waiting.
"$SIM" --listen 127.0.0.1:0 --jobs "$tmp/jobs.json" --health-delay 100 >"$tmp/sim2.out" 2>&1 &
procs+=($!)
wait_for 5 grep -q listening "$tmp/sim2.out"
nomad="http://127.0.0.1:$(grep -Eo '[0-9]+$' "$tmp/sim2.out" | head -n1)"
sed -i "s#^  staging: {nomad: {address: \"[^\"]*\"#  staging: {nomad: {address: \"$nomad\"#" "$cfg"
enqueue 1 <"$tmp/load.txt" >/dev/null
check "load: 300 requests recorded" equals "$(fsql "SELECT count(*) FROM requests WHERE job LIKE 'job%'")" 300
t0=$SECONDS
for _ in 1 2 3; do WORKERS=4 worker 4; done
check "load: every request ends" wait_for 240 bash -c \
  "[ \"\$(psql '$fpg' -XAtqc \"SELECT count(*) FROM requests WHERE job LIKE 'job%' AND state IN ('succeeded','failed')\")\" = 300 ]"
printf '     300 deploys in %d s with 3 workers x 4 threads\n' $((SECONDS - t0))
check "load: all succeeded" equals "$(fsql "SELECT count(*) FROM requests WHERE job LIKE 'job%' AND state = 'succeeded'")" 300
# Overlap: a register during a running deployment cancels it in Nomad. None may be cancelled, and each job
# ran its three requests in request order (the one with the highest ID is live; lines of one paste are recorded
# concurrently, so their IDs need not follow the lines).
fsql "SELECT DISTINCT ON (job) job || ' ' || version FROM requests WHERE job LIKE 'job%' ORDER BY job, id DESC" \
  >"$tmp/last.txt"
python3 - "$nomad" "$tmp/last.txt" >"$tmp/overlap.txt" <<'PY'
import json, sys, urllib.request
last = dict(line.split() for line in open(sys.argv[2]) if line.strip())
bad = []
for i in range(100):
    job = "job%02d" % i
    deps = json.load(urllib.request.urlopen(f"{sys.argv[1]}/v1/job/{job}/deployments?namespace=staging"))
    mine = [d for d in deps if d["JobVersion"] >= 1]
    if len(mine) != 3 or any(d["Status"] != "successful" for d in mine):
        bad.append((job, [(d["JobVersion"], d["Status"]) for d in deps]))
    v = json.load(urllib.request.urlopen(f"{sys.argv[1]}/v1/job/{job}?namespace=staging"))
    img = v["TaskGroups"][0]["Tasks"][0]["Config"]["image"]
    if not img.endswith(":" + last[job]):
        bad.append((job, img, "want", last[job]))
print(len(bad), bad[:5])
PY
check "load: no job had two deployments at once, and each job's last request is live" equals "$(cut -c1-2 "$tmp/overlap.txt" | tr -d ' ')" 0
[ "$(cut -c1-2 "$tmp/overlap.txt" | tr -d " ")" = 0 ] || show "$(cat "$tmp/overlap.txt")"

finish

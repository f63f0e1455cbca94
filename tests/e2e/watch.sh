#!/usr/bin/env bash
# End to end: deployments followed to the end (issue 5) through the shell,
# real Redis and PostgreSQL, and nomad-sim: canaries promoted and failed,
# pause/resume, unhealthy with the reason, auto-revert, no deployment at all,
# rollback, Nomad faults, and 20 deployments watched by one worker thread.
#   usage: watch.sh NOMATRON NOMAD_SIM
NOMATRON=$1 SIM=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# The dev jobs plus many00..many19 (like web, one allocation each).
python3 - "$SRC/deploy/dev/nomad-jobs.json" "$tmp/jobs.json" <<'PY'
import json, sys, copy
jobs = json.load(open(sys.argv[1]))
web = next(j for j in jobs if j["ID"] == "web" and j["Namespace"] == "staging")
for i in range(20):
    j = copy.deepcopy(web)
    j["ID"] = j["Name"] = "many%02d" % i
    j["TaskGroups"][0]["Count"] = 1
    jobs.append(j)
json.dump(jobs, open(sys.argv[2], "w"))
PY
SIM_JOBS=$tmp/jobs.json start_sim --health-delay 600
export NOMATRON_LOG_LEVEL=info

cfg=$tmp/nomatron.yaml
{
  printf 'redis: redis://127.0.0.1:%s/%s\npostgres: "%s"\nworkers: 1\n' "$NOMATRON_REDIS_PORT" "$rdb" "$pg"
  printf 'queue: {lease: 3s, reconcile: 2s, hold_limit: 8s}\nlimits: {open_requests: 0, commands_per_minute: 0}\n'
  printf 'environments:\n  staging: {nomad: {address: "%s", namespace: staging, timeout: 5s}}\njobs:\n' "$nomad"
  for j in web api shop worker; do printf '  %s: {tasks: [%s], image: registry.example.com/%s}\n' "$j" "$j" "$j"; done
  for i in $(seq -w 0 19); do printf '  many%s: {nomad_job: many%s, tasks: [web], image: registry.example.com/many}\n' "$i" "$i"; done
} >"$cfg"
"$NOMATRON" migrate --config "$cfg" >/dev/null || { echo "migrate failed"; exit 1; }
run_shell() { "$NOMATRON" shell --config "$cfg" --timeout "${1:-60}" 2>>"$tmp/nomatron.log"; }
behaviour() { curl -fsS -X POST "$nomad/_sim/behaviour" -d "$1" >/dev/null; }
state_of() { sql "SELECT state || '/' || phase || '/' || reason FROM requests WHERE id = $1"; }
is() { [ "$(state_of "$1")" = "$2" ]; }

# interactive: a shell fed through a fifo, so a line can wait for an event
open_shell() {
  rm -f "$tmp/in"; mkfifo "$tmp/in"
  "$NOMATRON" shell --config "$cfg" --timeout 60 <"$tmp/in" >"$tmp/live.out" 2>>"$tmp/nomatron.log" &
  live=$!
  exec 9>"$tmp/in"
}
say() { printf '%s\n' "$1" >&9; }
close_shell() { exec 9>&-; wait "$live"; }

# --- canaries: awaiting promotion, promoted by a person, then succeeded ---
open_shell
say 'deploy web v2 to staging --canary 1'
check "canary: waits for promotion" wait_for 20 grep -q 'D-1 running (awaiting_promotion)' "$tmp/live.out"
# Nomad promotes only healthy canaries: wait for the canary to be healthy (1 of 2 healthy is the canary).
check "canary: the canary turns healthy" wait_for 20 grep -qE 'D-1 running \(awaiting_promotion\).* 1/2 healthy' "$tmp/live.out"
say 'canary promote web in staging'
check "canary: promote answered" wait_for 10 grep -q 'canary promote web in staging: canaries promoted for D-1' "$tmp/live.out"
check "canary: then succeeded" wait_for 30 grep -q 'D-1 succeeded' "$tmp/live.out"
say 'canary promote web in staging'
check "canary: promoting with nothing running is refused" wait_for 10 grep -q 'error: canary promote web in staging: no request of web is running in staging' "$tmp/live.out"
close_shell
show "$(cat "$tmp/live.out")"
check "canary: promotion audited with its actor" equals \
  "$(sql "SELECT count(*) FROM audit_events WHERE request_id = 1 AND action = 'deploy.canary_promoted' AND actor LIKE 'shell:%'")" 1

# --- canary fail: the request fails ---
open_shell
say 'deploy web v3 to staging --canary 1'
check "canary fail: waits" wait_for 20 grep -q 'D-2 running (awaiting_promotion)' "$tmp/live.out"
say 'canary fail web in staging'
check "canary fail: the request fails" wait_for 30 grep -qE 'D-2 failed \[[a-z_]+\]: .*Deployment marked as failed' "$tmp/live.out"
close_shell
show "$(cat "$tmp/live.out")"

# --- pause and resume; the hold limit fails a request paused too long ---
open_shell
say 'deploy api v2 to staging'
# "rolling" shows once the job is registered; pausing needs the Nomad deployment, which the next line names
# (before it, pause answers "no deployment yet; try again in a moment", by design)
check "pause: rolling, with its deployment" wait_for 20 grep -q 'D-3 running (rolling): .*Nomad deployment' "$tmp/live.out"
say 'pause api in staging'
check "pause: answered" wait_for 10 grep -q 'pause api in staging: deployment paused for D-3' "$tmp/live.out"
check "pause: phase recorded" wait_for 10 is 3 running/paused/
say 'resume api in staging'
check "resume: answered" wait_for 10 grep -q 'resume api in staging: deployment resumed for D-3' "$tmp/live.out"
check "resume: succeeded" wait_for 30 is 3 succeeded//
say 'deploy api v3 to staging'
check "hold: rolling, with its deployment" wait_for 20 grep -q 'D-4 running (rolling): .*Nomad deployment' "$tmp/live.out"
say 'pause api in staging'
check "hold: a pause longer than queue.hold_limit fails the request" wait_for 30 is 4 failed//timeout
close_shell
show "$(cat "$tmp/live.out")"

# --- unhealthy: failed with Nomad's description and the task's own reason ---
behaviour '{"namespace":"staging","job":"web","version":null,"mode":"unhealthy"}'
out=$(printf 'deploy web v4 to staging --canary 0\n' | run_shell); rc=$?   # --canary 1 stayed in the job
show "$out"
check "unhealthy: failed [unhealthy] with Nomad's description" matches "$out" "D-5 failed \[unhealthy\]: .*Failed due to unhealthy allocations"
check "unhealthy: says why (the task's own failure)" matches "$out" "why: alloc [0-9a-f]+ web: Driver Failure: "
check "unhealthy: exit 1" equals "$rc" 1
curl -fsS -X DELETE "$nomad/_sim/behaviour" >/dev/null

# --- auto-revert: the revert's deployment is followed too ---
behaviour '{"namespace":"staging","job":"shop","version":1,"mode":"unhealthy"}'
open_shell
say 'deploy shop v2 to staging --canary 0'
check "auto-revert: Nomad's revert is announced" wait_for 30 grep -q 'Nomad is reverting to job version 0' "$tmp/live.out"
# Version 0 has a canary: the revert waits for promotion like any deploy (nomad#10882).
check "auto-revert: the revert's deployment is followed" \
  wait_for 30 grep -qE 'D-6 running \(awaiting_promotion\).* 1/3 healthy' "$tmp/live.out"
say 'canary promote shop in staging'
check "auto-revert: failed [auto_reverted] naming the version" \
  wait_for 30 grep -qE 'D-6 failed \[auto_reverted\]: .*reverted to job version 0, which is healthy' "$tmp/live.out"
close_shell
show "$(cat "$tmp/live.out")"
check "auto-revert: the job runs v1 again" equals "$(curl -fsS "$nomad/v1/job/shop?namespace=staging" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["TaskGroups"][0]["Tasks"][0]["Config"]["image"])')" \
  registry.example.com/shop:v1
curl -fsS -X DELETE "$nomad/_sim/behaviour" >/dev/null

# --- no deployment (MaxParallel 0) ---
out=$(printf 'deploy worker v2 to staging\n' | run_shell)
check "no deployment: succeeded, saying so" contains "$out" "D-7 succeeded"

# --- rollback: to the previous stable version, to a tag, to #N; refusals ---
out=$(printf 'rollback api in staging\n' | run_shell); rc=$?
show "$out"
check "rollback: queued" contains "$out" "D-8 queued: rollback api in staging to the previous stable version"
check "rollback: succeeded" contains "$out" "D-8 succeeded: api rolled back in staging"
check "rollback: api runs v2 again (the previous stable)" equals "$(curl -fsS "$nomad/v1/job/api?namespace=staging" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["TaskGroups"][0]["Tasks"][0]["Config"]["image"])')" \
  registry.example.com/api:v2
out=$(printf 'rollback api in staging to v1\n' | run_shell)
check "rollback to a tag" contains "$out" "D-9 succeeded"
out=$(printf 'rollback api in staging to nosuchtag\n' | run_shell); rc=$?
check "rollback to a tag never stable: refused with the reason" contains "$out" "no earlier stable job version runs tag nosuchtag"
check "... exit 1" equals "$rc" 1
out=$(printf 'rollback api in staging to #99\n' | run_shell)
check "rollback to an unknown #N: refused" contains "$out" "job version 99 is not among"

# --- Nomad faults: 5xx then success; a hanging blocking query is retried ---
curl -fsS -X POST "$nomad/_sim/faults" -d '{"error_ratio":0.3}' >/dev/null
out=$(printf 'deploy api v5 to staging\n' | run_shell 90)
curl -fsS -X POST "$nomad/_sim/faults" -d '{"error_ratio":0}' >/dev/null
check "5xx now and then: the deploy still ends" matches "$out" "D-12 (succeeded|failed)"
curl -fsS -X POST "$nomad/_sim/faults" -d '{"hang_blocking":true}' >/dev/null
(sleep 4; curl -fsS -X POST "$nomad/_sim/faults" -d '{"hang_blocking":false}' >/dev/null) &
out=$(printf 'deploy api v6 to staging\n' | run_shell 90)
show "$out"
check "hanging blocking query: timed out, retried, succeeded" contains "$out" "D-13 succeeded"

# --- the job changed in Nomad between read and register: conflict ---
# Every answer takes 1.5 s (the sim acts on arrival, answers later); a register from elsewhere lands while
# nomatron waits for the answer to its read of the job.
job=$(curl -fsS "$nomad/v1/job/web?namespace=staging")
curl -fsS -X POST "$nomad/_sim/faults" -d '{"latency_ms":1500}' >/dev/null
printf 'deploy web v7 to staging --canary 0\n' | run_shell >"$tmp/conflict.out" &
cpid=$!
sleep 0.8
python3 -c 'import json,sys; j=json.load(sys.stdin); j["Meta"]={"changed":"by hand"}; print(json.dumps({"Job":j}))' \
  <<<"$job" | curl -fsS -X POST "$nomad/v1/jobs?namespace=staging" -d @- >/dev/null
wait "$cpid"
curl -fsS -X POST "$nomad/_sim/faults" -d '{"latency_ms":0}' >/dev/null
show "$(cat "$tmp/conflict.out")"
check "conflict: the request fails with reason conflict" grep -qE 'failed \[conflict\]: the job changed in Nomad' "$tmp/conflict.out"

# --- what Nomad refuses is said clearly ---
printf '[{"SecretID":"11111111-2222-3333-4444-555555555555","AccessorID":"a","Name":"staging-only",
  "Type":"client","Namespaces":{"staging":["read-job","submit-job","list-jobs"]}}]\n' >"$tmp/acl.json"
"$SIM" --listen 127.0.0.1:0 --jobs "$SRC/deploy/dev/nomad-jobs.json" --acl "$tmp/acl.json" >"$tmp/acl.out" 2>&1 &
acl_pid=$!
wait_for 5 grep -q listening "$tmp/acl.out"
acl="http://127.0.0.1:$(grep -Eo '[0-9]+$' "$tmp/acl.out" | head -n1)"
cfg2=$tmp/errors.yaml
sed -n '1,3p' "$cfg" >"$cfg2"
cat >>"$cfg2" <<YAML
environments:
  staging: {nomad: {address: "$nomad", namespace: staging, timeout: 3s}}
  locked: {nomad: {address: "$acl", namespace: default, token: "11111111-2222-3333-4444-555555555555", timeout: 3s}}
  mars: {nomad: {address: "$nomad", namespace: staging, region: mars, timeout: 3s}}
jobs:
  web: {tasks: [web], image: registry.example.com/web}
  ghost: {tasks: [ghost], image: registry.example.com/ghost}
YAML
errs() { "$NOMATRON" shell --config "$cfg2" --timeout 60 2>>"$tmp/nomatron.log"; }
out=$(printf 'deploy web v8 to locked\n' | errs)
show "$out"
check "a token without the namespace: 403 said plainly" matches "$out" "failed \[nomad_error\]: .*(403|Permission denied)"
out=$(printf 'deploy web v8 to mars\n' | errs)
show "$out"
check "an unknown region: Nomad's own words" matches "$out" "failed \[nomad_error\]: .*(region|Region)"
out=$(printf 'deploy ghost v1 to staging\n' | errs)
check "a job that does not exist yet: refused with a clear message" contains "$out" \
  "job ghost does not exist in Nomad (namespace staging); nomatron changes the image of a job that is already there"
curl -fsS -X POST "$nomad/_sim/faults" -d '{"truncate_ratio":1}' >/dev/null
out=$(printf 'deploy web v9 to staging\n' | errs)
curl -fsS -X POST "$nomad/_sim/faults" -d '{"truncate_ratio":0}' >/dev/null
show "$out"
check "a truncated answer: failed with what was wrong, no crash" matches "$out" "failed \[nomad_error\]: reading the job: "
kill "$acl_pid" 2>/dev/null

# --- history and audit, from PostgreSQL ---
out=$(printf 'history api in staging --limit 3\naudit D-1\naudit 1234567890.000100\n' | run_shell)
show "$out"
check "history: newest first, limited" matches "$out" "^D-13  succeeded  deploy api v6 to staging  by shell:"
check "history: three lines" equals "$(grep -c '^D-[0-9]*  ' <<<"$out")" 3
check "audit: the trail names who promoted the canary" matches "$out" "deploy.canary_promoted +shell:[a-z0-9_.-]+ .*canaries promoted"
check "audit: the deployment ID is in the trail" matches "$out" "deploy.deployment .*deployment [0-9a-f]{8}"
check "audit: unknown message answers no record" contains "$out" "no record of 1234567890.000100"

# --- 20 deployments watched at once by one worker thread ---
for i in $(seq -w 0 19); do printf 'deploy many%s v2 to staging\n' "$i"; done >"$tmp/many.txt"
t0=$(date +%s.%N)
out=$(run_shell 120 <"$tmp/many.txt")
t1=$(date +%s.%N)
check "20 at once: all succeeded" equals "$(grep -c ' succeeded: many' <<<"$out")" 20
secs=$(python3 -c "print(round($t1 - $t0, 1))")
printf '     20 deployments (0.6 s health each) with workers: 1 in %s s\n' "$secs"
check "20 at once: watched concurrently, not one after another (< 8 s)" python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 8 else 1)"
# Requests per watched deployment: blocking reads only answer on change.
per=$(python3 - "$tmp/sim.log" <<'PY'
import re, sys, collections
n = collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r'GET /v1/(deployment|evaluation)/([0-9a-f-]+)\?', line)
    if m: n[m.group(2)] += 1
print(max(n.values()) if n else 0)
PY
)
printf '     most Nomad reads spent on one evaluation or deployment: %s\n' "$per"
check "reads per watched object stay small (one per change, not a poll)" test "$per" -le 12

finish

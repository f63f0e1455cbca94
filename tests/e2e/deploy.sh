#!/usr/bin/env bash
# End to end: `nomatron shell` with piped input against real Redis and
# PostgreSQL and nomad-sim. Asserts the replies, the job's image, version and
# Meta stamp in the simulator, the registrations it received, and the chained
# audit events in PostgreSQL.
#   usage: deploy.sh NOMATRON NOMAD_SIM
NOMATRON=$1 SIM=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_sim --health-delay 300

cat >"$tmp/nomatron.yaml" <<YAML
redis: redis://127.0.0.1:$NOMATRON_REDIS_PORT/$rdb
postgres: "$pg"
workers: 2
environments:
  staging:
    nomad: {address: "$nomad", namespace: staging, timeout: 5s}
  production:
    nomad: {address: "$nomad", namespace: default}
  broken:
    nomad: {address: "http://127.0.0.1:1", namespace: default, timeout: 2s}
jobs:
  web: {tasks: [web], image: registry.example.com/web}
  api: {tasks: [api], image: registry.example.com/api}
YAML
cfg=$tmp/nomatron.yaml
shell() { "$NOMATRON" shell --config "$cfg" "$@" 2>>"$tmp/nomatron.log"; }

# --- migrations ---
out=$("$NOMATRON" migrate --config "$cfg" 2>&1); rc=$?
check "migrate succeeds" equals "$rc" 0
out2=$("$NOMATRON" migrate --config "$cfg" 2>&1)
check "second migrate applies nothing" contains "$out2" "migrations applied: 0"

# --- one deploy, end to end ---
out=$(printf '/nomatron deploy web v2 to staging\n' | shell --timeout 60); rc=$?
printf '%s\n' "$out" | sed 's/^/     | /'
check "deploy: shell exits 0" equals "$rc" 0
check "deploy: request ID printed" contains "$out" "D-1 queued: deploy web v2 to staging"
check "deploy: progress printed" contains "$out" "D-1 running (rolling)"
check "deploy: succeeded printed" contains "$out" "D-1 succeeded"

job=$(curl -fsS "$nomad/v1/job/web?namespace=staging")
field() { python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" <<<"$job"; }
check "nomad: image set in staging" equals "$(field 'j["TaskGroups"][0]["Tasks"][0]["Config"]["image"]')" \
  "registry.example.com/web:v2"
check "nomad: new job version" equals "$(field 'j["Version"]')" "1"
check "nomad: version stable after the deployment" equals "$(field 'j["Stable"]')" "True"
check "nomad: Meta stamp request id" equals "$(field 'j["Meta"]["nomatron.request_id"]')" "D-1"
check "nomad: production untouched" equals \
  "$(curl -fsS "$nomad/v1/job/web?namespace=default" | python3 -c 'import json,sys; print(json.load(sys.stdin)["TaskGroups"][0]["Tasks"][0]["Config"]["image"])')" \
  "registry.example.com/web:v1"
registers=$(grep -cE '^(PUT|POST) /v1/jobs' "$tmp/sim.log" || true)
check "nomad: exactly one registration" equals "$registers" "1"
check "nomad: every request carried the namespace" \
  bash -c "! grep -E ' /v1/(job|evaluation|deployment)' '$tmp/sim.log' | grep -v 'namespace=' | grep -q ."

check "postgres: request succeeded" equals "$(sql "SELECT state FROM requests WHERE id = 1")" "succeeded"
check "postgres: from and to image recorded" equals \
  "$(sql "SELECT from_image || ' -> ' || to_image FROM requests WHERE id = 1")" \
  "registry.example.com/web:v1 -> registry.example.com/web:v2"
actions=$(sql "SELECT string_agg(action, ',' ORDER BY id) FROM audit_events WHERE request_id = 1")
check "audit: events in order" equals "$actions" \
  "request.created,deploy.started,deploy.registered,deploy.deployment,deploy.succeeded"
check "audit: chain links" equals "$(sql "SELECT count(*) FROM audit_events a JOIN audit_events b ON b.id = a.id + 1 WHERE b.prev_hash <> a.hash")" "0"
out=$("$NOMATRON" audit verify --config "$cfg" 2>&1); rc=$?
check "audit verify: intact (exit 0)" equals "$rc" 0
check "audit: UPDATE refused by the database" bash -c "! psql '$pg' -qc \"UPDATE audit_events SET detail = 'x'\" 2>/dev/null"

# --- status goes through a worker ---
out=$(printf 'status web\n' | shell --timeout 30); rc=$?
printf '%s\n' "$out" | sed 's/^/     | /'
check "status: exits 0" equals "$rc" 0
check "status: v2 in staging" matches "$out" '^ +staging +v2 '
check "status: v1 in production" matches "$out" '^ +production +v1 '
check "status: an unreachable Nomad is named, not fatal" matches "$out" "^ +broken +.*Couldn't connect"

# --- bad input: answered, nothing reaches Redis or Nomad ---
before_work=$(redis-cli -p "$NOMATRON_REDIS_PORT" -n "$rdb" xlen nomatron:work)
before_reg=$(grep -cE '^(PUT|POST) /v1/jobs' "$tmp/sim.log" || true)
{
  printf 'deploy web v2 to nowhere\n'
  printf 'deploy nosuchjob v2 to staging\n'
  printf 'deploy web -bad to staging\n'
  printf 'deploy web v2 staging\n'
  printf 'deploy web v2 to staging "unterminated\n'
  printf 'deploy web \xff\xfe to staging\n'
  head -c 10240 /dev/zero | tr '\0' 'a'; printf '\n'
  printf 'frobnicate\n'
} >"$tmp/bad.txt"
out=$(shell --timeout 10 <"$tmp/bad.txt"); rc=$?
printf '%s\n' "$out" | sed 's/^/     | /'
check "bad input: shell exits 0 (refusals are answers)" equals "$rc" 0
check "bad input: eight errors" equals "$(grep -c '^error: ' <<<"$out")" "8"
check "bad input: each with usage" equals "$(grep -c '^usage: ' <<<"$out")" "8"
check "bad input: unknown env named" contains "$out" "[unknown_env]"
check "bad input: unknown job named" contains "$out" "[unknown_job]"
check "bad input: bad version" contains "$out" "[bad_version]"
check "bad input: invalid UTF-8" contains "$out" "[bad_utf8]"
check "bad input: 10 kB line" contains "$out" "[too_long]"
check "bad input: nothing queued" equals "$(redis-cli -p "$NOMATRON_REDIS_PORT" -n "$rdb" xlen nomatron:work)" "$before_work"
check "bad input: nothing registered" equals "$(grep -cE '^(PUT|POST) /v1/jobs' "$tmp/sim.log" || true)" "$before_reg"
check "bad input: no request recorded" equals "$(sql "SELECT count(*) FROM requests")" "1"

# --- Nomad unreachable: failed, with the reason, audited; exit 1 ---
out=$(printf 'deploy web v3 to broken\n' | shell --timeout 60); rc=$?
printf '%s\n' "$out" | sed 's/^/     | /'
check "nomad down: shell exits 1" equals "$rc" 1
check "nomad down: failed with reason" contains "$out" "D-2 failed [nomad_error]"
check "nomad down: audited" equals "$(sql "SELECT state || '/' || reason FROM requests WHERE id = 2")" "failed/nomad_error"
check "nomad down: failure event in the chain" equals \
  "$(sql "SELECT action FROM audit_events WHERE request_id = 2 ORDER BY id DESC LIMIT 1")" "deploy.failed"

# --- nobody to run it: timed out, exit 124 ---
out=$(printf 'deploy api v2 to staging\n' | shell --workers 0 --timeout 1); rc=$?
check "no worker: shell exits 124" equals "$rc" 124
check "no worker: says what it waited for" contains "$out" "timed out after 1 s waiting for: D-3 (queued)"

# The queued D-3 runs once a worker process appears: nothing was lost while none ran.
"$NOMATRON" worker --config "$cfg" 2>>"$tmp/worker.log" &
wpid=$!
state=
for _ in $(seq 100); do
  state=$(sql "SELECT state FROM requests WHERE id = 3")
  [ "$state" = succeeded ] && break
  sleep 0.2
done
check "nomatron worker runs the request left queued" equals "$state" "succeeded"
t=$SECONDS
kill -TERM "$wpid"; wait "$wpid"; rc=$?
check "nomatron worker exits 0 on SIGTERM" equals "$rc" 0
check "nomatron worker stops within 5 s" test $((SECONDS - t)) -le 5

finish

#!/usr/bin/env bash
# End to end: governance through the shell (issue 7) — approvals by distinct
# eligible people, one open request per job, expiry, refusals in the audit
# trail, locks, a freeze that begins while a request is queued, explain.
#   usage: governance.sh NOMATRON NOMAD_SIM
NOMATRON=$1 SIM=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_sim --health-delay 300
export NOMATRON_LOG_LEVEL=info

cfg=$tmp/nomatron.yaml
cat >"$cfg" <<YAML
redis: redis://127.0.0.1:$NOMATRON_REDIS_PORT/$rdb
postgres: "$pg"
workers: 1
queue: {lease: 2s, reconcile: 1s}
shell: {allow_as: true}
people:
  alice: [shell:alice]
  bob:   [shell:bob, shell:bob2]
  carol: [shell:carol]
  dave:  [shell:dave]
  erin:  [shell:erin]
groups:
  sre: [bob, carol, erin]
  developers: [alice, dave]
environments:
  staging:
    nomad: {address: "$nomad", namespace: staging}
    deployers: [developers, sre]
    approvers: [sre]
  production:
    nomad: {address: "$nomad", namespace: default}
    deployers: [developers, sre]
    promote_from: staging
    approvals: 2
    approvers: [sre]
    self_approval: false
    approval_ttl: 8s
  live:
    nomad: {address: "$nomad", namespace: default}
    deployers: [developers, sre]
    promote_from: staging
    promote_after: 2s
jobs:
  web: {tasks: [web], image: registry.example.com/web}
  api: {tasks: [api], image: registry.example.com/api}
YAML
"$NOMATRON" migrate --config "$cfg" >/dev/null || { echo "migrate failed"; exit 1; }

rm -f "$tmp/in"; mkfifo "$tmp/in"
"$NOMATRON" shell --config "$cfg" --as alice --timeout 60 <"$tmp/in" >"$tmp/out" 2>>"$tmp/nomatron.log" &
live=$!
exec 9>"$tmp/in"
say() { printf '%s\n' "$1" >&9; }
seen() { grep -qE -- "$1" "$tmp/out"; }

say 'deploy web v2 to staging'
check "staging takes a deploy (no approvals there)" wait_for 20 seen 'D-1 succeeded'
say 'deploy web v2 to production'
check "production takes only promote" wait_for 10 seen 'refused: .*\[promote_required\]'
say 'promote web from staging to production'
check "request: waits for approval" wait_for 10 seen 'D-2 pending_approval: promote web v2 to production'
check "request: shows the evidence" wait_for 5 seen 'D-2 evidence: staging runs registry.example.com/web:v2, latest deployment [0-9a-f]{8} successful, all allocations healthy since 20'

check "request: says what it needs" wait_for 5 seen 'D-2 needs 2 approvals'
check "request: the Nomad plan is shown to approvers" wait_for 10 seen 'D-2 pending_approval: plan at JobModifyIndex [0-9]+ \(Edited\): web: [0-9]+ destructive'
say 'approve D-2'
check "the requester (not an approver) is refused" wait_for 5 seen 'refused: .*\[not_approver\]'
say ':as dave'
say 'approve D-2'
check "dave (a developer) is refused" wait_for 5 seen 'refused: .*\[not_approver\].*' 
say ':as bob'
say 'approve D-2'
check "bob's approval counts" wait_for 5 seen 'D-2: approval counted \(1 of 2\)'
say ':as bob2'
say 'approve D-2'
check "bob again, by another identity, counts once" wait_for 5 seen 'refused: .*\[already_counted\]'
say ':as carol'
say 'approve D-2'
check "carol's approval completes it" wait_for 5 seen 'D-2 approved \(2 of 2\) and queued'
check "then it runs" wait_for 30 seen 'D-2 succeeded'

say ':as alice'
say 'promote web from staging to production'
check "a second request waits" wait_for 10 seen 'D-3 pending_approval'
say 'promote web from staging to production'
check "one open request per job where approvals are required" wait_for 5 seen 'refused: D-3 is still open .*\[open_request_exists\]'
check "an unanswered request expires after approval_ttl" wait_for 15 seen 'D-3 expired'

say ':as carol'
say 'lock production release weekend'
check "an approver locks an environment" wait_for 5 seen 'production is locked'
say ':as alice'
say 'promote web from staging to production'
check "a locked environment refuses requests" wait_for 5 seen 'refused: .*\[locked\]'
say 'promote web from staging to production --emergency "checkout is down"'
check "break-glass: announced" wait_for 10 seen 'BREAK-GLASS D-[0-9]+: shell:alice passes a freeze \(--emergency "checkout is down"\); it needs 3 approvals'
check "break-glass: logged loudly" wait_for 5 grep -q 'level=warn msg="break-glass: a request passes a freeze"' "$tmp/nomatron.log"
bg=$(grep -oE 'BREAK-GLASS D-[0-9]+' "$tmp/out" | grep -oE '[0-9]+' | head -n1)
check "break-glass: flagged in the audit" test "$(sql "SELECT count(*) FROM audit_events WHERE request_id = ${bg:-0} AND action = 'request.emergency'")" = 1
say "cancel D-$bg"
check "break-glass: the requester withdraws it" wait_for 5 seen "D-$bg cancelled"
say 'unlock production'
check "a developer may not unlock" wait_for 5 seen 'refused: .*\[not_allowed\]|refused: .*\[not_approver\]'
say ':as carol'
say 'unlock production'
check "the approver unlocks" wait_for 5 seen 'production is unlocked'
say ':as alice'
say 'explain deploy web v6 to production'
check "explain says what it would take" wait_for 5 seen 'promote_from|promote'

# --- a policy change on reload voids the approvals of waiting requests ---
say 'promote web from staging to production'
check "reload: a request waits" wait_for 10 bash -c "[ -n \"\$(psql '$pg' -XAtqc \"SELECT id FROM requests WHERE state = 'pending_approval'\")\" ]"
rid=$(sql "SELECT id FROM requests WHERE state = 'pending_approval' ORDER BY id DESC LIMIT 1")
say ':as bob'
say "approve D-$rid"
check "reload: bob's approval counts" wait_for 5 seen "D-$rid: approval counted \(1 of 2\)"
sed -i 's/approval_ttl: 8s/approval_ttl: 9s/' "$cfg"
kill -HUP "$live"
check "reload: the approvals are void, people are told" wait_for 10 seen "D-$rid pending_approval.*policy changed: approvals of .* are void; it needs 2 again"
say "approve D-$rid"
check "reload: bob may approve again" wait_for 5 seen "D-$rid: approval counted \(1 of 2\)"
say ':as carol'
say "cancel D-$rid"
check "cancel: an approver withdraws it" wait_for 5 seen "D-$rid cancelled"
exec 9>&-
wait "$live"
show "$(cat "$tmp/out")"

# --- a freeze that begins while a request is queued stops it at dequeue ---
out=$(printf ':as alice\ndeploy api v2 to staging\n' | "$NOMATRON" shell --config "$cfg" --workers 0 --timeout 1 2>>"$tmp/nomatron.log")
id=$(grep -oE 'D-[0-9]+ queued' <<<"$out" | grep -oE '[0-9]+' | head -n1)
check "freeze: a request is queued with no worker" test -n "$id"
out=$(printf ':as bob\nlock staging incident\n' | "$NOMATRON" shell --config "$cfg" --workers 0 --timeout 5 2>>"$tmp/nomatron.log")
check "freeze: staging locked after it was queued" contains "$out" "staging is locked"
"$NOMATRON" worker --config "$cfg" 2>>"$tmp/worker.log" &
wpid=$!
check "freeze: the worker defers it at dequeue" wait_for 10 grep -q "request deferred.*req=D-$id" "$tmp/worker.log"
sleep 2
check "freeze: it stays queued, Nomad untouched" equals "$(sql "SELECT state FROM requests WHERE id = $id")" queued
out=$(printf ':as bob\nunlock staging\n' | "$NOMATRON" shell --config "$cfg" --workers 0 --timeout 5 2>>"$tmp/nomatron.log")
check "freeze: after unlock it runs" wait_for 20 bash -c "[ \"\$(psql '$pg' -XAtqc 'SELECT state FROM requests WHERE id = $id')\" = succeeded ]"
kill -TERM "$wpid"; wait "$wpid"

# --- approvals bind to the plan: a job changed after the plan fails with conflict ---
"$NOMATRON" worker --config "$cfg" 2>>"$tmp/worker.log" &
wpid=$!
out=$(printf 'promote api from staging to production\n' | "$NOMATRON" shell --config "$cfg" --as alice --workers 0 --timeout 10 2>>"$tmp/nomatron.log")
pid=$(grep -oE 'D-[0-9]+ pending_approval' <<<"$out" | grep -oE '[0-9]+' | head -n1)
check "plan: a promote waiting for approval" test -n "$pid"
check "plan: recorded on the request" wait_for 10 bash -c "[ -n \"\$(psql '$pg' -XAtqc 'SELECT plan_modify_index FROM requests WHERE id = $pid')\" ]"
job=$(curl -fsS "$nomad/v1/job/api?namespace=default")
python3 -c 'import json,sys; j=json.load(sys.stdin); j["Meta"]={"changed":"after the plan"}; print(json.dumps({"Job":j}))' \
  <<<"$job" | curl -fsS -X POST "$nomad/v1/jobs?namespace=default" -d @- >/dev/null
printf ':as bob\napprove D-%s\n:as carol\napprove D-%s\n' "$pid" "$pid" |
  "$NOMATRON" shell --config "$cfg" --workers 0 --timeout 5 >/dev/null 2>>"$tmp/nomatron.log"
check "plan: the approved request fails with conflict" wait_for 20 bash -c \
  "[ \"\$(psql '$pg' -XAtqc 'SELECT state || chr(47) || reason FROM requests WHERE id = $pid')\" = failed/conflict ]"
kill -TERM "$wpid"; wait "$wpid"

# --- promotion paths: only promote, only what runs healthy in the source, long enough ---
ash() { "$NOMATRON" shell --config "$cfg" --as alice --timeout 60 2>>"$tmp/nomatron.log"; }
out=$(printf 'deploy api v9 to live\n' | ash)
check "promote_from: a deploy is refused" contains "$out" "[promote_required]"
out=$(printf 'explain promote api from staging to live\n' | ash)
show "$out"
check "explain promote: what it would take, with the evidence" matches "$out" "promote_after|evidence|healthy"
out=$(printf 'promote api from production to live\n' | ash)
check "promote_from: only from the named source" contains "$out" "[promote_wrong_source]"
out=$(printf 'deploy api v4 to staging\n' | ash)
out=$(printf 'promote api from staging to live\n' | ash)
show "$out"
check "promote_after: a version healthy for less than 2s is refused" contains "$out" "[too_soon]"
out=$(printf 'deploy api v5 to staging\n' | ash)
sleep 3
out=$(printf 'promote api from staging to live\n' | ash); rc=$?
show "$out"
check "promote: accepted and run" matches "$out" "D-[0-9]+ succeeded: api v5 is live in live"
check "promote: the exact image the source runs" equals "$(curl -fsS "$nomad/v1/job/api?namespace=default" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["TaskGroups"][0]["Tasks"][0]["Config"]["image"])')" \
  registry.example.com/api:v5
check "promote: exit 0" equals "$rc" 0

# --- every refusal is in the audit trail, with its reason ---
check "refusals are audit events" test "$(sql "SELECT count(*) FROM audit_events WHERE action = 'request.refused'")" -ge 5
check "a refusal names its rule" test "$(sql "SELECT count(*) FROM audit_events WHERE action = 'request.refused' AND outcome = 'not_approver'")" -ge 2
check "approvals are in the trail, one per counted person" equals \
  "$(sql "SELECT string_agg(actor, ',' ORDER BY id) FROM audit_events WHERE request_id = 2 AND action = 'approval.given'")" \
  "shell:bob,shell:carol"
out=$("$NOMATRON" audit verify --config "$cfg" 2>&1)
check "the chain is intact after all of it" contains "$out" "intact"

finish

#!/usr/bin/env bash
# End to end: Slack over Socket Mode (issue 9) — the real nomatron against
# slack-fake, nomad-sim, Redis and PostgreSQL. A slash command becomes a
# channel message edited through progress to the outcome; refusals are
# ephemeral; approval by another person; a dropped socket, a half-open socket
# and a refresh are survived; redelivery, another workspace and 429 are
# handled; SIGTERM exits within 5 s.
#   usage: slack.sh NOMATRON NOMAD_SIM SLACK_FAKE
NOMATRON=$1 SIM=$2 FAKE=$3
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_sim --health-delay 2000
PY=/usr/bin/python3

APP_TOKEN=xapp-1-A0NOMATRON-e2e-secret-app
BOT_TOKEN=xoxb-e2e-secret-bot
"$FAKE" --port 0 --app-token "$APP_TOKEN" --bot-token "$BOT_TOKEN" --ping-interval 0 --log-level warn \
  >"$tmp/fake.out" 2>"$tmp/fake.log" &
fake_pid=$!
wait_for 5 grep -q listening "$tmp/fake.out" || { cat "$tmp/fake.out" "$tmp/fake.log"; exit 1; }
fport=$(grep -Eo '[0-9]+$' "$tmp/fake.out" | head -n1)
nm_pid=
trap 'kill $nm_pid $fake_pid 2>/dev/null; e2e_cleanup' EXIT

cfg=$tmp/nomatron.yaml
cat >"$cfg" <<YAML
redis: redis://127.0.0.1:$NOMATRON_REDIS_PORT/$rdb
postgres: "$pg"
workers: 2
queue: {lease: 2s, reconcile: 1s}
chat:
  slack:
    app_token: $APP_TOKEN
    bot_token: $BOT_TOKEN
    team_id: T0TEAM
    api_url: http://127.0.0.1:$fport/api/
    num_connections: 2
people:
  bob: [slack:U0REQUESTER]
  ana: [slack:U0APPROVER]
  dave: [slack:U0DAVE]
environments:
  staging:
    nomad: {address: "$nomad", namespace: staging}
  production:
    nomad: {address: "$nomad", namespace: default}
    approvals: 1
    approvers: [ana]
    deployers: [bob, ana]
jobs:
  web: {tasks: [web], image: registry.example.com/web}
  api: {tasks: [api], image: registry.example.com/api}
YAML
"$NOMATRON" migrate --config "$cfg" >/dev/null || { echo "migrate failed"; exit 1; }

start_nomatron() {
  NOMATRON_SLACK_PING_MS=400 NOMATRON_LOG_LEVEL=info \
    "$NOMATRON" serve --config "$cfg" --role all --listen 127.0.0.1:0 >>"$tmp/nomatron.log" 2>&1 &
  nm_pid=$!
  wait_for 10 grep -q 'msg=listening' "$tmp/nomatron.log" || { cat "$tmp/nomatron.log"; exit 1; }
  lport=$(grep -Eo 'msg=listening listen=[^ ]+ port=[0-9]+' "$tmp/nomatron.log" | tail -n1 | grep -Eo '[0-9]+$')
  export lport
}

fake() { curl -s -X "$1" "http://127.0.0.1:$fport$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
# slash USER CHANNEL TEXT [TEAM]: prints the envelope id
slash() {
  local body
  body=$($PY -c 'import json,sys; d={"user_id":sys.argv[1],"channel_id":sys.argv[2],"text":sys.argv[3]}
if len(sys.argv) > 4: d["team_id"] = sys.argv[4]
print(json.dumps(d))' "$@")
  fake POST /_fake/slash "$body" | $PY -c 'import json,sys; print(json.load(sys.stdin).get("envelope_id",""))'
}
py() { $PY -c "import json,sys; d=json.load(sys.stdin); $1"; }
# every text version of every channel message, one per line
versions() { fake GET "/_fake/messages" | py 'print("\n".join(v for m in d["messages"] for v in m["versions"]))'; }
# one line per message: "USER: text" (newlines in the text folded)
ephemerals() { fake GET "/_fake/messages" | py 'print("\n".join(e["user"]+": "+e["text"].replace("\n"," ") for e in d["ephemeral"]))'; }
dms() { fake GET "/_fake/messages" | py 'print("\n".join(m["channel"]+": "+m["text"].replace("\n"," ") for m in d["messages"] if m["channel"].startswith("D")))'; }
seen_version() { versions | grep -E -- "$1" >/dev/null; }
seen_ephemeral() { ephemerals | grep -E -- "$1" >/dev/null; }
readyz() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$lport/readyz"; }
open_calls() { fake GET /_fake/connections | py 'print(d["connections_open_calls"])'; }
# open sockets the fake still reads (a half-open one is never read, so it never sees the close)
open_now() { fake GET /_fake/connections | py 'print(sum(1 for c in d["connections"] if c["open"] and not c["halfopen"]))'; }
# for checks that run in `bash -c`
export -f fake py versions ephemerals dms readyz open_calls open_now
export PY fport pg

start_nomatron
check "readyz: ready once PostgreSQL answers and Slack said hello" wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$lport/readyz)\" = 200 ]"
body=$(curl -s "http://127.0.0.1:$lport/readyz")
check "readyz: reports both Slack connections, Redis and PostgreSQL" matches "$body" '"postgres":\{"up":true\}.*"redis":\{"up":true\}.*"slack":\{"connections":2\}'
check "readyz: reports each Nomad as the workers saw it" wait_for 5 bash -c "curl -s http://127.0.0.1:$lport/readyz | grep -q '\"staging\":{\"up\":true'"
check "healthz answers" equals "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$lport/healthz")" 200
check "an unknown path is a clear 404" equals "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$lport/nope")" 404
check "the fake saw two sockets open" equals "$(open_now)" 2

# --- a slash command becomes a channel message, edited to the outcome ---
env1=$(slash U0REQUESTER C0DEPLOY 'deploy web v2 to staging')
check "slash: accepted by the fake" test -n "$env1"
check "slash: a channel message for D-1" wait_for 10 seen_version 'D-1'
check "slash: the message ends succeeded" wait_for 30 seen_version 'D-1.*succeeded'
acks=$(fake GET /_fake/acks)
check "slash: the envelope was acknowledged, none late" equals "$(py 'print(d["acked"] >= 1 and d["late"] == 0)' <<<"$acks")" True
check "slash: ack under 100 ms on loopback" equals "$(py 'print(d["ack_us"]["max"] < 100000)' <<<"$acks")" True
updates=$(fake GET "/_fake/calls?method=chat.update")
check "progress: an edit showed the progress bar" contains "$updates" 'healthy'
check "progress: edited in place (chat.update), not new messages" equals "$(fake GET /_fake/messages | py 'print(sum(1 for m in d["messages"] if m["channel"]=="C0DEPLOY"))')" 1
ts1=$(fake GET /_fake/messages | py 'print(d["messages"][0]["ts"])')
check "audit: the message ts is recorded for D-1" wait_for 5 bash -c "[ \"\$(psql '$pg' -XAtqc \"SELECT count(*) FROM audit_messages WHERE request_id = 1 AND message_ref = '$ts1' AND permalink LIKE 'https://acme.slack.com/archives/C0DEPLOY/p%'\")\" = 1 ]"
perma=$(sql "SELECT permalink FROM audit_messages WHERE request_id = 1 LIMIT 1")
slash U0DAVE C0DEPLOY "audit $perma" >/dev/null
check "audit: the permalink finds the trail (ephemeral)" wait_for 10 seen_ephemeral 'U0DAVE: .*audit trail of D-1'

# --- refusals and errors are ephemeral, escaped ---
post_ephemerals=$(fake GET '/_fake/calls?method=chat.postEphemeral' | py 'print(len(d["calls"]))')
slash U0REQUESTER C0DEPLOY 'deploy web v2 to nowhere' >/dev/null
check "usage error: ephemeral to the asker with the usage" wait_for 10 seen_ephemeral 'U0REQUESTER: error: .*nowhere'
# An answer known at once rides in the command's ack (A2.3, A3.3): no Web API call.
check "usage error: answered in the ack itself" equals "$(fake GET /_fake/messages | py 'print([e["via"] for e in d["ephemeral"] if "nowhere" in e["text"]])')" "['ack']"
check "usage error: no chat.postEphemeral for it" equals "$(fake GET '/_fake/calls?method=chat.postEphemeral' | py 'print(len(d["calls"]))')" "$post_ephemerals"
slash U0DAVE C0DEPLOY 'deploy web v3 to production' >/dev/null
check "refusal: ephemeral with the tag" wait_for 10 seen_ephemeral 'U0DAVE: refused: .*\[not_deployer\]'
check "refusal: an answer that needed PostgreSQL goes through the Web API" equals "$(fake GET /_fake/messages | py 'print([e["via"] for e in d["ephemeral"] if "not_deployer" in e["text"]])')" "['api']"
slash U0REQUESTER C0DEPLOY 'deploy <!channel> v1 to staging' >/dev/null
check "echoed text is escaped" wait_for 10 seen_ephemeral '&lt;!channel&gt;'
check "nothing posted can mention the channel" bash -c "! fake GET /_fake/messages | grep -q '<!channel>'"
fake POST /_fake/fail '{"method":"chat.postEphemeral","error":"user_not_in_channel","count":1}' >/dev/null
slash U0DAVE C0DEPLOY 'deploy web v4 to production' >/dev/null   # refused after a PostgreSQL read: a Web API answer
check "someone the channel cannot show an ephemeral to gets a direct message" wait_for 10 bash -c "dms | grep -q '^D[A-Z0-9]*: refused: .*not_deployer'"

fake POST /_fake/fail '{"method":"chat.postMessage","error":"not_in_channel","count":1}' >/dev/null
slash U0REQUESTER C0PRIVATE 'deploy api v5 to staging' >/dev/null
check "a channel that refuses the message: the asker still learns the request ID" wait_for 10 seen_ephemeral 'U0REQUESTER: D-[0-9]+ was created, but its message could not be posted here \(not_in_channel\)'

# --- approval by another person ---
slash U0REQUESTER C0DEPLOY 'deploy web v3 to production' >/dev/null
wait_for 10 bash -c "[ -n \"\$(psql '$pg' -XAtqc \"SELECT id FROM requests WHERE version = 'v3' AND env = 'production'\")\" ]"
rid=$(sql "SELECT id FROM requests WHERE version = 'v3' AND env = 'production'")
check "approval: the request waits, 0/1 shown" wait_for 10 seen_version "D-$rid.*approval 0/1"
check "approval: the message shows the plan" wait_for 10 bash -c "fake GET '/_fake/calls?method=chat.update' | grep -q 'JobModifyIndex'"
slash U0REQUESTER C0DEPLOY "approve $rid" >/dev/null
check "approval: the requester cannot approve" wait_for 10 seen_ephemeral 'U0REQUESTER: refused: .*\[not_approver\]'
slash U0APPROVER C0DEPLOY "approve D-$rid" >/dev/null
check "approval: counted for ana (ephemeral)" wait_for 10 seen_ephemeral "U0APPROVER: D-$rid approved"
check "approval: the message goes on to succeeded" wait_for 30 seen_version "D-$rid.*succeeded"
check "approval: the approver is named on the message" bash -c "fake GET '/_fake/calls?method=chat.update' | grep -q '<@U0APPROVER>'"

# --- the Approve button on the message does the same, by the person who clicks ---
slash U0REQUESTER C0DEPLOY 'deploy api v6 to production' >/dev/null
wait_for 10 bash -c "[ -n \"\$(psql '$pg' -XAtqc \"SELECT id FROM requests WHERE version = 'v6'\")\" ]"
bid=$(sql "SELECT id FROM requests WHERE version = 'v6'")
check "button: the request message carries Approve / Reject" wait_for 10 bash -c "fake GET '/_fake/messages' | grep -q 'nomatron.approve'"
bts=$(fake GET /_fake/messages | py "print([m['ts'] for m in d['messages'] if 'D-$bid' in m['text']][0])")
click=$($PY -c 'import json,sys; print(json.dumps({"type":"interactive","payload":{"type":"block_actions",
  "user":{"id":"U0APPROVER","team_id":"T0TEAM"},"team":{"id":"T0TEAM","domain":"acme"},"api_app_id":"A0NOMATRON",
  "container":{"type":"message","message_ts":sys.argv[2],"channel_id":"C0DEPLOY","is_ephemeral":False},
  "channel":{"id":"C0DEPLOY","name":"deploys"},"trigger_id":"111.222.click","response_url":"http://127.0.0.1/none",
  "actions":[{"type":"button","action_id":"nomatron.approve","block_id":"b","value":"D-"+sys.argv[1],
              "action_ts":"1700000003.123456"}]}}))' "$bid" "$bts")
fake POST /_fake/envelope "$click" >/dev/null
check "button: the click approves" wait_for 30 seen_version "D-$bid.*succeeded"
check "button: the click is recorded against the message ts" equals "$(sql "SELECT count(*) FROM audit_messages WHERE request_id = $bid AND direction = 'in' AND message_ref = '$bts'")" 1
check "button: ... and in the chain, by who clicked" equals "$(sql "SELECT actor FROM audit_events WHERE request_id = $bid AND action = 'message.in'")" "slack:U0APPROVER"

# --- redelivery, another workspace, 429 ---
before=$(sql "SELECT count(*) FROM requests")
env3=$(slash U0REQUESTER C0OTHER 'deploy api v7 to staging')
wait_for 10 bash -c "[ \"\$(psql '$pg' -XAtqc 'SELECT count(*) FROM requests')\" -gt $before ]"
fake POST /_fake/redeliver "{\"envelope_id\":\"$env3\"}" >/dev/null
sleep 1.5
check "redelivery: one request for a redelivered envelope" equals "$(sql "SELECT count(*) FROM requests WHERE version = 'v7'")" 1
check "redelivery: the redelivery was acknowledged too" equals "$(fake GET /_fake/acks | py 'print(d["unacked"])')" 0
slash U0REQUESTER C0DEPLOY 'deploy api v8 to staging' T0OTHER >/dev/null
sleep 1.5
check "another workspace: refused, nothing created" equals "$(sql "SELECT count(*) FROM requests WHERE version = 'v8'")" 0
check "another workspace: logged" grep -q 'another workspace refused' "$tmp/nomatron.log"
fake POST /_fake/ratelimit '{"method":"chat.postEphemeral","count":1,"retry_after":1}' >/dev/null
n0=$(ephemerals | grep -c 'U0DAVE: refused: .*not_deployer')
t0=$(date +%s%N)
slash U0DAVE C0DEPLOY 'deploy web v5 to production' >/dev/null   # a Web API answer, as above
check "429: the answer arrives after waiting" wait_for 10 bash -c "[ \$(ephemerals | grep -c 'U0DAVE: refused: .*not_deployer') -gt $n0 ]"
t1=$(date +%s%N)
check "429: it waited Retry-After (>= 1 s)" test $(((t1 - t0) / 1000000)) -ge 1000
check "429: the call was retried and succeeded" equals "$(fake GET '/_fake/calls?method=chat.postEphemeral' | py 'print(",".join(str(c["status"]) for c in d["calls"][-2:]))')" "429,200"

# --- a socket dropped mid-flow ---
calls0=$(open_calls)
slash U0REQUESTER C0DEPLOY 'deploy web v4 to staging' >/dev/null
check "drop: the request started" wait_for 10 seen_version 'web v4.*D-'
fake POST /_fake/drop >/dev/null
check "drop: two sockets again, each with a fresh URL" wait_for 10 bash -c "[ \"\$(open_calls)\" -ge $((calls0 + 2)) ] && [ \"\$(open_now)\" = 2 ]"
check "drop: the flow completes" wait_for 30 seen_version 'web v4.*succeeded'

# --- half-open: nothing arrives, not even pongs ---
calls0=$(open_calls)
fake POST /_fake/halfopen >/dev/null
check "half-open: detected and replaced" wait_for 10 bash -c "[ \"\$(open_calls)\" -ge $((calls0 + 2)) ]"
check "half-open: logged" grep -q 'silent (half-open' "$tmp/nomatron.log"
slash U0DAVE C0DEPLOY 'envs' >/dev/null
check "half-open: commands work on the new sockets" wait_for 10 seen_ephemeral 'U0DAVE: .*production'

# --- refresh: a replacement first, no gap ---
wait_for 5 bash -c "[ \"\$(readyz)\" = 200 ]"
calls0=$(open_calls)
fake POST /_fake/disconnect '{"reason":"refresh_requested"}' >/dev/null
gap=0
for _ in $(seq 1 30); do [ "$(readyz)" = 200 ] || gap=1; sleep 0.05; done
check "refresh: new connections opened" wait_for 5 bash -c "[ \"\$(open_calls)\" -ge $((calls0 + 2)) ]"
check "refresh: never without a ready connection" equals "$gap" 0

# --- secrets and shutdown ---
check "no token in nomatron's log" bash -c "! grep -qE '$APP_TOKEN|$BOT_TOKEN' '$tmp/nomatron.log'"
check "no token in the audit trail" equals "$(sql "SELECT count(*) FROM audit_events WHERE detail LIKE '%secret%'")" 0
t0=$(date +%s%N)
kill -TERM "$nm_pid"
wait "$nm_pid"
code=$?
t1=$(date +%s%N)
nm_pid=
check "SIGTERM: exits 0" equals "$code" 0
check "SIGTERM: within 5 s" test $(((t1 - t0) / 1000000)) -lt 5000
check "SIGTERM: the sockets are closed" wait_for 3 bash -c '[ "$(open_now)" = 0 ]'

# --- a bot killed mid-flow (workers apart): the new one finds the message in the audit trail and re-reads
#     the events the dead one had not acknowledged (same consumer name) ---
NOMATRON_LOG_LEVEL=info "$NOMATRON" worker --config "$cfg" >>"$tmp/worker.log" 2>&1 &
wk_pid=$!
trap 'kill $nm_pid $fake_pid $wk_pid 2>/dev/null; e2e_cleanup' EXIT
start_bot() {
  NOMATRON_SLACK_PING_MS=400 NOMATRON_LOG_LEVEL=info \
    "$NOMATRON" serve --config "$cfg" --role bot --listen off >>"$tmp/bot.log" 2>&1 &
  nm_pid=$!
}
start_bot
check "role bot: connects without workers" wait_for 10 bash -c "[ \"\$(grep -c 'slack: connections ready' '$tmp/bot.log')\" -ge 1 ]"
slash U0REQUESTER C0DEPLOY 'deploy web v9 to staging' >/dev/null
check "restart: the request message is posted" wait_for 10 seen_version 'web v9.*D-'
check "restart: the deployment is under way" wait_for 10 seen_version 'web v9.*running'
kill -KILL "$nm_pid"; wait "$nm_pid" 2>/dev/null   # a crash: nothing drained, events left unacknowledged
start_bot
check "restart: the new bot edits the old message to the outcome" wait_for 30 seen_version 'web v9.*succeeded'
check "restart: it said so" grep -q 'following a message posted before' "$tmp/bot.log"
check "restart: still one message for the request" equals "$(fake GET /_fake/messages | py 'print(sum(1 for m in d["messages"] if "web v9" in m["text"]))')" 1
kill -TERM "$nm_pid" "$wk_pid"; wait "$nm_pid" "$wk_pid" 2>/dev/null
nm_pid= wk_pid=

[ "$fails" = 0 ] || { echo "--- nomatron.log (tail)"; tail -n 40 "$tmp/nomatron.log"; tail -n 20 "$tmp/bot.log"; }
finish

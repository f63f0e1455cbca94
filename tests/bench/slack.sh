#!/usr/bin/env bash
# The Slack adapter under load (docs/BENCHMARKS.md, "Slack"). Not run by ctest.
#
#   usage: tests/bench/slack.sh BUILD_DIR
#     BUILD_DIR holds bin/nomatron and bin/slack-fake (a Release build for figures that mean something).
#   environment (defaults in brackets):
#     RATE [1000]        slash commands per second driven by the fake
#     COUNT [10000]      commands in the run
#     TEXT [whoami]      the command: whoami is answered from the snapshot, in the ack itself, so the run measures
#                        the adapter (envelope in, core, ack with the answer out), not PostgreSQL or the Web API;
#                        a command answered later (e.g. "history") adds PostgreSQL and a chat.postEphemeral call
#     CONNECTIONS [2]    chat.slack.num_connections
#     LOG_LEVEL [info]   the bot's log level (info logs one line per command)
#     WRAP []            a command to run the bot under, e.g. "valgrind --tool=callgrind" (figures then mean nothing)
#     REDIS_PORT [$NOMATRON_REDIS_PORT|6390], PG_PORT [$NOMATRON_PG_PORT|5441]: running servers (deploy/dev/lib.sh)
#
# Printed, all from one run:
#   start -> hello: exec of `nomatron serve --role bot` to its first "connection ready" log line, and to
#     all sockets ready;
#   RSS idle (VmRSS after 2 s with nothing to do) and at load (VmHWM after the run);
#   ack latency p50/p90/p99/max as the fake measured it (frame written -> ack read), beside the fake's own
#     loopback round trip measured during the same run (the floor);
#   bot CPU per command: on-CPU time of all the bot's threads during the load / COUNT, from
#     /proc/PID/task/*/schedstat (nanoseconds; user/kernel split from /proc/PID/stat ticks), and the same
#     less what the bot spends idle (timers, pings) over as long, measured in the 2 s before the load;
#   answers delivered: acks that carried the answer (the fake's count) plus chat.postEphemeral calls it recorded.
set -uo pipefail
BUILD=${1:?usage: slack.sh BUILD_DIR}
NOMATRON=$BUILD/bin/nomatron FAKE=$BUILD/bin/slack-fake
for b in "$NOMATRON" "$FAKE"; do [ -x "$b" ] || { echo "missing $b"; exit 1; }; done
RATE=${RATE:-1000} COUNT=${COUNT:-10000} TEXT=${TEXT:-whoami} CONNECTIONS=${CONNECTIONS:-2} LOG_LEVEL=${LOG_LEVEL:-info}
REDIS_PORT=${REDIS_PORT:-${NOMATRON_REDIS_PORT:-6390}} PG_PORT=${PG_PORT:-${NOMATRON_PG_PORT:-5441}}
PY=/usr/bin/python3
tmp=$(mktemp -d)
fake_pid= nm_pid=
trap 'kill $nm_pid $fake_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

"$FAKE" --port 0 --app-token xapp-1-bench --bot-token xoxb-bench --ping-interval 0 --log-level error \
  >"$tmp/fake.out" 2>"$tmp/fake.log" &
fake_pid=$!
for _ in $(seq 50); do grep -q listening "$tmp/fake.out" && break; sleep 0.1; done
fport=$(grep -Eo '[0-9]+$' "$tmp/fake.out" | head -n1)
fake() { curl -s -X "$1" "http://127.0.0.1:$fport$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }

cat >"$tmp/nomatron.yaml" <<YAML
redis: redis://127.0.0.1:$REDIS_PORT/14
postgres: "host=127.0.0.1 port=$PG_PORT user=nomatron dbname=nomatron"
chat:
  slack:
    app_token: xapp-1-bench
    bot_token: xoxb-bench
    team_id: T0TEAM
    api_url: http://127.0.0.1:$fport/api/
    num_connections: $CONNECTIONS
environments:
  staging: {nomad: {address: "http://127.0.0.1:1", namespace: staging}}
jobs:
  web: {tasks: [web], image: registry.example.com/web}
YAML

t0=$(date +%s%N)
NOMATRON_LOG_LEVEL=$LOG_LEVEL ${WRAP:-} "$NOMATRON" serve --config "$tmp/nomatron.yaml" --role bot --listen off >"$tmp/nm.log" 2>&1 &
nm_pid=$!
# ready = the bot's own "connection ready" log lines (info); with LOG_LEVEL=warn, the fake's hello count, polled
ms_of() { $PY -c 'import sys,datetime; t=datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc); print(int(t.timestamp()*1000))' "$1"; }
hellos() { fake GET /_fake/connections | grep -o '"hello_sent":true' | wc -l; }
if [ "$LOG_LEVEL" = info ]; then
  for _ in $(seq 500); do [ "$(grep -c 'slack: connection ready' "$tmp/nm.log")" -ge "$CONNECTIONS" ] && break; sleep 0.01; done
  first=$(grep -m1 'slack: connection ready' "$tmp/nm.log" | grep -Eo 'ts=[^ ]+' | cut -d= -f2)
  all=$(grep 'slack: connection ready' "$tmp/nm.log" | sed -n "${CONNECTIONS}p" | grep -Eo 'ts=[^ ]+' | cut -d= -f2)
  [ -n "$all" ] || { echo "no hello"; cat "$tmp/nm.log"; exit 1; }
  echo "start -> first hello: $(( $(ms_of "$first") - t0 / 1000000 )) ms; all $CONNECTIONS ready: $(( $(ms_of "$all") - t0 / 1000000 )) ms"
else
  for _ in $(seq 1000); do [ "$(hellos)" -ge "$CONNECTIONS" ] && break; sleep 0.005; done
  echo "start -> all $CONNECTIONS ready: $(( ($(date +%s%N) - t0) / 1000000 )) ms (polled; coarse)"
fi

ns() { cat /proc/"$nm_pid"/task/*/schedstat 2>/dev/null | awk '{n += $1} END {print n + 0}'; }
i0=$(ns) ti0=$(date +%s%N)
sleep 2
i1=$(ns) ti1=$(date +%s%N)
rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$nm_pid/status")
anon_idle=$(awk '/RssAnon/ {print $2}' "/proc/$nm_pid/status")
priv_idle=$(awk '/^Private_(Clean|Dirty):/ {n += $2} END {print n}' "/proc/$nm_pid/smaps_rollup")
mib() { echo "$(($1 / 1024)).$(( ($1 % 1024) * 10 / 1024 ))"; }
echo "RSS idle: $(mib "$rss_idle") MiB (private to the process: $(mib "$priv_idle") MiB, of which anonymous $(mib "$anon_idle") MiB; the rest is shared library pages)"

tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$nm_pid/stat"; }
ucpu() { awk '{print $14}' "/proc/$nm_pid/stat"; }
fake POST /_fake/reset >/dev/null
c0=$(cpu) u0=$(ucpu) n0=$(ns) tl0=$(date +%s%N)
res=$(fake POST /_fake/load "{\"rate\":$RATE,\"count\":$COUNT,\"user_id\":\"U0REQUESTER\",\"channel_id\":\"C0BENCH\",\"text\":\"$TEXT\"}")
# answers trail the acks: wait until they stop coming
prev=-1
for _ in $(seq 100); do
  n=$(fake GET '/_fake/calls?method=chat.postEphemeral' | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["calls"]))')
  [ "$n" = "$prev" ] && break
  prev=$n; sleep 0.3
done
c1=$(cpu) u1=$(ucpu) n1=$(ns) tl1=$(date +%s%N)
rss_load=$(awk '/VmHWM/ {print $2}' "/proc/$nm_pid/status")
priv_load=$(awk '/^Private_(Clean|Dirty):/ {n += $2} END {print n}' "/proc/$nm_pid/smaps_rollup")
$PY - "$res" "$COUNT" "$RATE" "$((c1 - c0))" "$tck" "$n" "$((u1 - u0))" \
  "$((n1 - n0))" "$((tl1 - tl0))" "$((i1 - i0))" "$((ti1 - ti0))" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); count = int(sys.argv[2]); rate = sys.argv[3]
ticks = int(sys.argv[4]); tck = int(sys.argv[5]); answers = int(sys.argv[6]); uticks = int(sys.argv[7])
run_ns, run_wall, idle_ns, idle_wall = (int(x) for x in sys.argv[8:12])
idle_share = idle_ns / max(idle_wall, 1)   # CPU seconds per wall second with nothing to do
a, l = r["ack_us"], r["loopback_us"]
print(f"load: {r['sent']} commands at {rate}/s in {r['duration_ms']} ms; acked {r['acked']}, late {r['late']}, unacked {r['unacked']}")
print(f"ack latency us: p50 {a['p50']}  p90 {a['p90']}  p99 {a['p99']}  max {a['max']}")
print(f"floor (fake's TCP loopback round trip, same run) us: p50 {l['p50']}  p99 {l['p99']}  ({l['trips']} trips)")
print(f"ack p99 / loopback p99: {a['p99'] / max(l['p99'], 1):.1f}x")
print(f"bot CPU per command: {run_ns / count / 1e3:.1f} us  (on-CPU {run_ns / 1e6:.1f} ms over {run_wall / 1e6:.0f} ms"
      f" for {count} commands; user/kernel {uticks / max(ticks, 1) * 100:.0f}/{(ticks - uticks) / max(ticks, 1) * 100:.0f} %)")
print(f"  less idle ({idle_share * 1e3:.2f} ms of CPU per s with nothing to do): "
      f"{(run_ns - idle_share * run_wall) / count / 1e3:.1f} us per command")
in_ack = r.get("answered_in_ack", 0)
print(f"answers delivered: {in_ack + answers} of {count} ({in_ack} in the ack itself, {answers} through chat.postEphemeral)")
PY
echo "RSS at load (VmHWM): $(mib "$rss_load") MiB (private after the run: $(mib "$priv_load") MiB)"

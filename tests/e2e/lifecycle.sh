#!/usr/bin/env bash
# End to end: reload (SIGHUP) and shutdown (SIGTERM/SIGINT) of `nomatron
# worker` and `nomatron shell`, and no configured secret in any log line,
# reply, audit row or Redis entry.
#   usage: lifecycle.sh NOMATRON NOMAD_SIM
NOMATRON=$1 SIM=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_sim --health-delay 2500 --healthy default/api:20000   # api in production: slow, so SIGTERM finds it mid-watch
export NOMATRON_LOG_LEVEL=info

token_secret=e2e-NOMAD-S3CRET-7f3a
file_secret=e2e-FILE-S3CRET-c0de
pg_secret=e2e-PG-S3CRET-91c2
printf '%s\n' "$file_secret" >"$tmp/token"

# write_cfg FILE STAGING_ADDRESS [extra environment yaml]
write_cfg() {
  cat >"$1" <<YAML
redis: redis://127.0.0.1:$NOMATRON_REDIS_PORT/$rdb
postgres: "$pg password=$pg_secret"
workers: 1
audit: {checkpoint: 2s}
environments:
  staging:
    nomad: {address: "$2", namespace: staging, timeout: 3s, token: "$token_secret"}
  production:
    nomad: {address: "$nomad", namespace: default, token: "\${file:$tmp/token}"}
${3:-}
jobs:
  web: {tasks: [web], image: registry.example.com/web}
  api: {tasks: [api], image: registry.example.com/api}
YAML
}
broken=http://127.0.0.1:1
w=$tmp/worker.yaml s=$tmp/shell.yaml
write_cfg "$w" "$broken"
write_cfg "$s" "$nomad"
"$NOMATRON" migrate --config "$s" >/dev/null || { echo "migrate failed"; exit 1; }
enqueue() { "$NOMATRON" shell --config "$s" --workers 0 --timeout 30 2>>"$tmp/shell.log"; }
state_of() { sql "SELECT state FROM requests WHERE id = $1"; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
reloads() { grep -c 'msg="configuration reloaded"' "$tmp/worker.log" || true; }
reloaded() { [ "$(reloads)" -ge "$1" ]; }   # (a function, so wait_for re-reads the log each time)

"$NOMATRON" worker --config "$w" 2>>"$tmp/worker.log" &
wpid=$!

# --- the worker runs with the snapshot it was started with ---
out=$(printf 'deploy web v2 to staging\n' | enqueue); rc=$?
show "$out"
check "before reload: the worker uses its own config (staging unreachable)" contains "$out" "D-1 failed [nomad_error]"
check "before reload: shell exits 1" equals "$rc" 1

# --- SIGHUP with a valid file: swapped ---
write_cfg "$w" "$nomad"
kill -HUP "$wpid"
check "SIGHUP: reload logged" wait_for 5 reloaded 1
out=$(printf 'deploy web v3 to staging\n' | enqueue); rc=$?
show "$out"
check "after reload: the new address is used" contains "$out" "D-2 succeeded"

# --- in-flight work keeps its snapshot across a reload ---
printf 'deploy api v2 to staging\n' | enqueue >"$tmp/inflight.out" &
spid=$!
check "in flight: D-3 is running" wait_for 10 is_state 3 running
write_cfg "$w" "$broken"
kill -HUP "$wpid"
check "in flight: second reload logged" wait_for 5 reloaded 2
wait "$spid"; rc=$?
check "in flight: D-3 finished with the snapshot it started with" contains "$(cat "$tmp/inflight.out")" "D-3 succeeded"
check "in flight: shell exits 0" equals "$rc" 0
out=$(printf 'deploy web v4 to staging\n' | enqueue)
check "after the second reload: new work uses the new snapshot" contains "$out" "D-4 failed [nomad_error]"

# --- SIGHUP with an invalid file: the running config stays ---
printf 'workers: [\n' >"$w"
kill -HUP "$wpid"
check "invalid reload: refusal logged with file and line" \
  wait_for 5 grep -qE "configuration not reloaded.*worker.yaml:2" "$tmp/worker.log"
check "invalid reload: worker still running" kill -0 "$wpid"
out=$(printf 'deploy web v2 to production\n' | enqueue)
check "invalid reload: work continues with the old snapshot" contains "$out" "D-5 succeeded"

# --- SIGTERM while a deploy is in flight: out within 5 s, the work handed back ---
printf 'deploy api v3 to production\n' | "$NOMATRON" shell --config "$s" --workers 0 --timeout 60 \
  >"$tmp/term.out" 2>>"$tmp/shell.log" &
spid=$!
check "SIGTERM: D-6 is running" wait_for 10 is_state 6 running
t=$SECONDS
kill -TERM "$wpid"; wait "$wpid"; rc=$?
check "SIGTERM: worker exits 0" equals "$rc" 0
check "SIGTERM: worker stops within 5 s" test $((SECONDS - t)) -le 5
check "SIGTERM: the unfinished entry stays pending for another worker" equals \
  "$(redis-cli -p "$NOMATRON_REDIS_PORT" -n "$rdb" xpending nomatron:work workers | head -n1)" 1
t=$SECONDS
kill -INT "$spid"; wait "$spid"; rc=$?
check "SIGINT: waiting shell stops within 5 s" test $((SECONDS - t)) -le 5
check "SIGINT: shell exits 130" equals "$rc" 130

# --- SIGINT on an idle worker ---
"$NOMATRON" worker --config "$s" 2>>"$tmp/worker.log" &
wpid=$!
sleep 0.5
t=$SECONDS
kill -INT "$wpid"; wait "$wpid"; rc=$?
check "SIGINT: idle worker exits 0 within 5 s" test "$rc" = 0 -a $((SECONDS - t)) -le 5

# --- the shell reloads too: a new environment becomes usable ---
s2=$tmp/shell2.yaml
write_cfg "$s2" "$nomad"
mkfifo "$tmp/in"
"$NOMATRON" shell --config "$s2" --workers 1 --timeout 30 <"$tmp/in" >"$tmp/shell2.out" 2>>"$tmp/shell.log" &
spid=$!
exec 9>"$tmp/in"
printf 'deploy web v5 to qa\n' >&9
check "shell: unknown environment before reload" wait_for 5 grep -qF "[unknown_env]" "$tmp/shell2.out"
write_cfg "$s2" "$nomad" "  qa:
    nomad: {address: \"$nomad\", namespace: staging}"
kill -HUP "$spid"
check "shell: reload logged" wait_for 5 grep -q 'msg="configuration reloaded"' "$tmp/shell.log"
printf 'deploy web v5 to qa\n' >&9
exec 9>&-
wait "$spid"; rc=$?
show "$(cat "$tmp/shell2.out")"
check "shell: the new environment is accepted and deployed" grep -qE '^D-[0-9]+ succeeded: web v5 is live in qa' "$tmp/shell2.out"
check "shell: exits 0" equals "$rc" 0

# --- audit checkpoints are published on their timer ---
check "checkpoint: the chain's head is logged on the timer" \
  grep -qE 'msg="audit checkpoint" head=[0-9]+ events=[0-9]+ hash=[0-9a-f]{64}' "$tmp/worker.log"
check "checkpoint: recorded in the database" test "$(sql "SELECT count(*) FROM audit_checkpoints")" -ge 1

# --- logs: one logfmt line per event, with the request's context ---
check "logs: request events carry req, job, env and actor" \
  grep -qE 'msg=deploy.succeeded req=D-2 job=web env=staging actor=shell:' "$tmp/worker.log"
check "logs: every line is logfmt with ts, level and msg" \
  bash -c "! grep -vE '^ts=[0-9T:.Z-]+ level=(debug|info|warn|error) msg=' '$tmp/worker.log' '$tmp/shell.log' | grep -q ."

# --- no configured secret anywhere ---
{
  cat "$tmp"/*.log "$tmp"/*.out
  sql "COPY (SELECT * FROM audit_events) TO STDOUT"
  sql "COPY (SELECT * FROM requests) TO STDOUT"
  for k in $(redis-cli -p "$NOMATRON_REDIS_PORT" -n "$rdb" --scan); do
    redis-cli -p "$NOMATRON_REDIS_PORT" -n "$rdb" type "$k" | grep -q stream &&
      redis-cli -p "$NOMATRON_REDIS_PORT" -n "$rdb" xrange "$k" - +
  done
} >"$tmp/everything.txt" 2>&1
check "secrets: something was collected" test "$(wc -l <"$tmp/everything.txt")" -gt 50
for secret in "$token_secret" "$file_secret" "$pg_secret"; do
  check "secrets: ${secret%%-S3CRET*} secret appears nowhere" bash -c "! grep -qF '$secret' '$tmp/everything.txt'"
done

finish

#!/usr/bin/env bash
# nomad-sim over real sockets: the parts the pure unit tests cannot reach
# (--speed on the server clock, ACL from a tokens file, injected connection
# resets / truncation / latency / hanging blocking queries, the request log,
# --help). Bounded: every curl has a timeout; the whole run takes seconds.
#   usage: sim_test.sh NOMAD_SIM JOBS_FILE
set -uo pipefail
SIM=$1 JOBS=$2
fails=0 passes=0
ok() { passes=$((passes + 1)); printf 'ok   %s\n' "$1"; }
bad() { fails=$((fails + 1)); printf 'FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '     %s\n' "$2"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
equals() { [ "$1" = "$2" ] || { printf '     expected [%s], got [%s]\n' "$2" "$1"; return 1; }; }
contains() { grep -qF -- "$2" <<<"$1"; }

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

cat >"$tmp/tokens.json" <<'JSON'
[{"SecretID":"bot-secret","AccessorID":"acc-bot","Name":"bot","Type":"client",
  "Namespaces":{"staging":["list-jobs","read-job","submit-job"]}}]
JSON

help=$("$SIM" --help)
check "--help documents the control API" contains "$help" "/_sim/behaviour"
check "--help documents --speed" contains "$help" "--speed N"
"$SIM" --listen 127.0.0.1:0 --jobs "$JOBS" --bogus 2>/dev/null
check "unknown option refused (exit 2)" equals "$?" 2

# 10-minute progress deadline at 600x: about one second.
"$SIM" --listen 127.0.0.1:0 --jobs "$JOBS" --speed 600 --acl "$tmp/tokens.json" --seed 1 \
  --never-placed staging/web@1 --log "$tmp/sim.log" >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q listening "$tmp/out" && break; sleep 0.1; done
port=$(grep -Eo '[0-9]+$' "$tmp/out" | head -n1)
[ -n "$port" ] || { cat "$tmp/out"; echo "nomad-sim did not start"; exit 1; }
check "stdout line" bash -c "grep -qE '^nomad-sim listening on 127\.0\.0\.1:[0-9]+$' '$tmp/out'"
base="http://127.0.0.1:$port"
C() { curl -sS -m 5 "$@"; }
T=(-H "X-Nomad-Token: bot-secret")

check "no token: 403" equals "$(C -o /dev/null -w '%{http_code}' "$base/v1/job/web?namespace=staging")" 403
check "403 body" equals "$(C "$base/v1/job/web?namespace=staging")" "Permission denied"
check "token: 200" equals "$(C "${T[@]}" -o /dev/null -w '%{http_code}' "$base/v1/job/web?namespace=staging")" 200
check "bearer: 200" equals "$(C -H 'Authorization: Bearer bot-secret' -o /dev/null -w '%{http_code}' "$base/v1/job/web?namespace=staging")" 200
check "other namespace: 403" equals "$(C "${T[@]}" -o /dev/null -w '%{http_code}' "$base/v1/job/web?namespace=default")" 403

C "${T[@]}" "$base/v1/job/web?namespace=staging" |
  python3 -c 'import json,sys; j=json.load(sys.stdin); j["TaskGroups"][0]["Tasks"][0]["Config"]["image"]="x:v2"; print(json.dumps({"Job":j}))' \
  >"$tmp/reg.json"
reg=$(C "${T[@]}" -X PUT --data-binary @"$tmp/reg.json" "$base/v1/jobs?namespace=staging")
ev=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["EvalID"])' <<<"$reg")
check "register answered an eval" bash -c "[ -n '$ev' ]"
start=$(date +%s%N)
status=
for _ in $(seq 60); do
  status=$(C "${T[@]}" "$base/v1/job/web/deployment?namespace=staging" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["Status"] + "|" + d["StatusDescription"] + "|" + str(d["JobVersion"]))')
  case $status in failed*) break ;; esac
  sleep 0.1
done
elapsed=$((($(date +%s%N) - start) / 1000000))
check "never placed -> progress deadline (10 min at 600x)" equals "$status" \
  "failed|Failed due to progress deadline|1"
check "deadline passed in under 3 s of wall time" bash -c "[ $elapsed -lt 3000 ]"

# Faults through the control endpoint.
C -X POST -d '{"reset_ratio":1}' "$base/_sim/faults" >/dev/null
C "${T[@]}" -o /dev/null "$base/v1/status/leader" 2>/dev/null
check "reset_ratio 1: connection reset (curl 56)" equals "$?" 56
C -X POST -d '{"reset_ratio":0,"truncate_ratio":1}' "$base/_sim/faults" >/dev/null
C "${T[@]}" -o /dev/null "$base/v1/job/web?namespace=staging" 2>/dev/null
check "truncate_ratio 1: partial body (curl 18)" equals "$?" 18
C -X POST -d '{"truncate_ratio":0,"latency_ms":300}' "$base/_sim/faults" >/dev/null
t=$(C -o /dev/null -w '%{time_total}' "$base/v1/status/leader")
check "latency_ms 300 delays the answer" python3 -c "import sys; sys.exit(0 if $t >= 0.29 else 1)"
C -X POST -d '{"latency_ms":0,"error_ratio":1}' "$base/_sim/faults" >/dev/null
check "error_ratio 1: 500 No cluster leader" equals "$(C -w ' %{http_code}' "$base/v1/status/leader")" "No cluster leader 500"
C -X POST -d '{"error_ratio":0,"hang_blocking":true}' "$base/_sim/faults" >/dev/null
curl -sS -m 1 "${T[@]}" -o /dev/null "$base/v1/job/web?namespace=staging&index=1&wait=100ms" 2>/dev/null
check "hang_blocking: blocking query never answers (curl 28)" equals "$?" 28
C -X POST "$base/_sim/reset" >/dev/null
check "after reset: answered" equals "$(C "${T[@]}" -o /dev/null -w '%{http_code}' "$base/v1/job/web?namespace=staging&index=1&wait=100ms")" 200

log=$(C "$base/_sim/requests")
check "request log lists this request" contains "$log" '"target":"/v1/job/web?namespace=staging&index=1&wait=100ms"'
check "--log keeps the METHOD TARGET STATUS lines" bash -c "grep -qE '^PUT /v1/jobs\?namespace=staging 200$' '$tmp/sim.log'"
check "no secret in the request log" bash -c "! grep -q bot-secret '$tmp/sim.log' && ! grep -q bot-secret <<<'$log'"

printf '%d passed, %d failed\n' "$passes" "$fails"
[ "$fails" -eq 0 ]

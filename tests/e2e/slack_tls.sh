#!/usr/bin/env bash
# End to end: Slack over TLS, as production always is (https:// Web API,
# wss:// Socket Mode), against slack-fake serving a certificate from a CA made
# here. The bot connects to the address it resolved but must check the
# certificate against the host name (SNI and verification), for libcurl and
# for libwebsockets alike:
#   - trusted through chat.slack.ca_file: auth.test, hello, a command answered;
#   - the CA not trusted (no ca_file): nothing connects, and the log says why;
#   - a certificate for another name: the same.
#   usage: slack_tls.sh NOMATRON NOMAD_SIM SLACK_FAKE
NOMATRON=$1 SIM=$2 FAKE=$3
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
command -v openssl >/dev/null || { echo "openssl (the command) is needed"; exit 1; }

# A CA, a certificate for localhost and one for another name, both signed by it.
cd "$tmp" || exit 1
ossl() { openssl "$@" 2>>"$tmp/openssl.log" || { cat "$tmp/openssl.log"; echo "openssl $1 failed"; exit 1; }; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=nomatron e2e CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
for name in localhost wrong.example; do
  ossl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$name"
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$name" >"$name.ext"
  ossl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" -days 2 -extfile "$name.ext"
done
cd - >/dev/null || exit 1

APP_TOKEN=xapp-1-A0NOMATRON-e2e-secret-app
BOT_TOKEN=xoxb-e2e-secret-bot
fake_pid= nm_pid=
trap 'kill $nm_pid $fake_pid 2>/dev/null; e2e_cleanup' EXIT

# start_fake CERTNAME [URLHOST]: slack-fake with TLS, handing out wss://URLHOST URLs (default localhost)
start_fake() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
  # The background shell truncates fake.out only when it gets to it: the last fake's "listening" line (a dead
  # port) must not be there to be read first.
  rm -f "$tmp/fake.out"
  "$FAKE" --port 0 --app-token "$APP_TOKEN" --bot-token "$BOT_TOKEN" --ping-interval 0 --log-level warn \
    --tls-cert "$tmp/$1.pem" --tls-key "$tmp/$1.key" --host "${2:-localhost}" >"$tmp/fake.out" 2>"$tmp/fake.log" &
  fake_pid=$!
  wait_for 5 grep -q listening "$tmp/fake.out" || { cat "$tmp/fake.out" "$tmp/fake.log"; exit 1; }
  fport=$(grep -Eo '[0-9]+$' "$tmp/fake.out" | tail -n1)
  export fport tmp   # for the checks that run in `bash -c`
}
# the control API: -k, since the "wrong name" fake's certificate is wrong on purpose
fake() { curl -sk -X "$1" "https://localhost:$fport$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
py() { $PY -c "import json,sys; d=json.load(sys.stdin); $1"; }
hellos() { fake GET /_fake/connections | py 'print(sum(1 for c in d["connections"] if c.get("hello_sent")))'; }
ephemerals() { fake GET "/_fake/messages" | py 'print("\n".join(e["user"]+": "+e["text"].replace("\n"," ") for e in d["ephemeral"]))'; }
export -f fake py hellos ephemerals
export PY

# write_cfg CA_LINE: the config, CA_LINE the ca_file line or nothing
write_cfg() {
  cat >"$tmp/nomatron.yaml" <<YAML
redis: redis://127.0.0.1:$NOMATRON_REDIS_PORT/$rdb
postgres: "$pg"
chat:
  slack:
    app_token: $APP_TOKEN
    bot_token: $BOT_TOKEN
    team_id: T0TEAM
    api_url: https://localhost:$fport/api/
    num_connections: 1
    $1
people:
  bob: [slack:U0REQUESTER]
environments:
  staging:
    nomad: {address: "http://127.0.0.1:1", namespace: staging}
jobs:
  web: {tasks: [web], image: registry.example.com/web}
YAML
}
# start_bot CA_LINE LOG: nomatron serve --role bot
start_bot() {
  write_cfg "$1"
  NOMATRON_LOG_LEVEL=info "$NOMATRON" serve --config "$tmp/nomatron.yaml" --role bot --listen off >"$2" 2>&1 &
  nm_pid=$!
}
stop_bot() { kill "$nm_pid" 2>/dev/null; wait "$nm_pid" 2>/dev/null; nm_pid=; }

start_fake localhost
write_cfg ""
"$NOMATRON" migrate --config "$tmp/nomatron.yaml" >/dev/null || { echo "migrate failed"; exit 1; }

# --- trusted: the whole path works over TLS ---
start_bot "ca_file: $tmp/ca.pem" "$tmp/ok.log"
check "trusted CA: Socket Mode over wss:// said hello" wait_for 10 bash -c '[ "$(hellos)" -ge 1 ]'
check "trusted CA: the bot logged the connection ready" wait_for 5 grep -q 'slack: connection ready' "$tmp/ok.log"
check "trusted CA: auth.test went over https://" equals "$(fake GET '/_fake/calls?method=auth.test' | py 'print(len(d["calls"]))')" 1
fake POST /_fake/slash '{"user_id":"U0REQUESTER","channel_id":"C0DEPLOY","text":"whoami"}' >/dev/null
check "trusted CA: a command is acked and answered" wait_for 10 bash -c 'ephemerals | grep -q "U0REQUESTER: .*bob"'
check "trusted CA: no TLS complaint in the log" bash -c "! grep -Eiq 'certificate|tls|ssl' '$tmp/ok.log'"
stop_bot

# --- the CA not trusted: nothing connects, and the log says why ---
start_fake localhost
start_bot "" "$tmp/untrusted.log"
check "untrusted CA: the log names the certificate problem" \
  wait_for 10 grep -Eiq 'certificate|SSL' "$tmp/untrusted.log"
sleep 1
check "untrusted CA: no auth.test reached the fake" equals "$(fake GET '/_fake/calls?method=auth.test' | py 'print(len(d["calls"]))')" 0
check "untrusted CA: no socket said hello" equals "$(hellos)" 0
stop_bot
show "$(grep -Ei 'certificate|ssl' "$tmp/untrusted.log" | head -n 2)"

# --- a certificate for another name: refused even with the CA trusted ---
start_fake wrong.example
start_bot "ca_file: $tmp/ca.pem" "$tmp/wrongname.log"
check "wrong name: the log names the certificate problem" \
  wait_for 10 grep -Eiq 'certificate|SSL|host name|hostname' "$tmp/wrongname.log"
sleep 1
check "wrong name: no auth.test reached the fake" equals "$(fake GET '/_fake/calls?method=auth.test' | py 'print(len(d["calls"]))')" 0
check "wrong name: no socket said hello" equals "$(hellos)" 0
stop_bot
show "$(grep -Ei 'certificate|ssl|host' "$tmp/wrongname.log" | head -n 2)"

# --- Socket Mode checks the name on its own: the Web API at https://localhost
# passes, but apps.connections.open hands out wss://127.0.0.1, which the
# localhost certificate does not cover (libwebsockets, not libcurl, must refuse) ---
start_fake localhost 127.0.0.1
start_bot "ca_file: $tmp/ca.pem" "$tmp/wsname.log"
check "socket name: the Web API passed (apps.connections.open called)" \
  wait_for 10 bash -c '[ "$(fake GET "/_fake/calls?method=apps.connections.open" | py "print(len(d[\"calls\"]))")" -ge 1 ]'
sleep 2
check "socket name: no socket said hello" equals "$(hellos)" 0
check "socket name: the bot says the TLS handshake failed, for which host, and what to do" \
  grep -q 'msg="slack: TLS handshake failed" host=127.0.0.1 .*hint=.*chat.slack.ca_file' "$tmp/wsname.log"
stop_bot
show "$(grep -F 'TLS handshake failed' "$tmp/wsname.log" | head -n 1)"
finish

#!/usr/bin/env bash
# The command line of SPEC §2: every subcommand's --help, usage errors,
# config errors, and each exit code (0, 1, 2, 3; 124 is in deploy.sh).
#   usage: cli.sh NOMATRON NOMAD_SIM
NOMATRON=$1 SIM=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# code_of EXPECTED WHAT ARGS...: runs nomatron, checks the exit code, keeps the output in $out.
out=
code_of() {
  local want=$1 what=$2; shift 2
  out=$("$NOMATRON" "$@" 2>&1); local rc=$?
  if [ "$rc" = "$want" ]; then ok "$what (exit $want)"; else bad "$what: exit $rc, want $want" "$(head -c 300 <<<"$out")"; fi
}

cfg=$tmp/nomatron.yaml
cat >"$cfg" <<YAML
redis: redis://127.0.0.1:$NOMATRON_REDIS_PORT/$rdb
postgres: "$pg"
environments:
  staging: {nomad: {address: "http://127.0.0.1:1", namespace: staging}}
jobs:
  web: {tasks: [web], image: registry.example.com/web}
YAML

# --- help everywhere ---
code_of 0 "top-level --help" --help
check "top-level help lists every subcommand" bash -c 'for w in serve worker shell migrate audit config version; do grep -qE "^  $w( |\$)" <<<"$0" || exit 1; done' "$out"
for sub in serve worker shell migrate "audit verify" "audit export" "audit show" "audit checkpoint" audit "config check" config version; do
  # shellcheck disable=SC2086
  code_of 0 "$sub --help" $sub --help
  check "$sub --help prints a usage" contains "$out" "usage: nomatron"
done
code_of 2 "no subcommand"
code_of 2 "unknown subcommand" frobnicate
check "unknown subcommand is named" contains "$out" "unknown command 'frobnicate'"

# --- usage errors: 2 ---
code_of 2 "unknown flag" shell --bogus
code_of 2 "bad --workers" shell --config "$cfg" --workers many
code_of 2 "bad --timeout" shell --config "$cfg" --timeout -1
code_of 2 "bad --role" serve --config "$cfg" --role chef
check "bad --role says what is allowed" contains "$out" "all, bot or worker"
code_of 2 "worker takes no --role" worker --role bot
code_of 2 "audit: unknown subcommand" audit frob
code_of 2 "audit export needs --format" audit export --config "$cfg"
code_of 2 "audit export: bad --format" audit export --format xml
code_of 2 "audit show: bad --since" audit show --since yesterday
code_of 2 "audit show: bad --request" audit show --request X-1
code_of 2 "audit verify: flag of another subcommand" audit verify --format csv
check "... is named" contains "$out" "--format does not apply here"
code_of 1 "audit export before migrate" audit export --format csv --config "$cfg" --since 2026-01-01
check "... says to migrate" contains "$out" "run nomatron migrate"
code_of 2 "config: unknown subcommand" config frob
code_of 2 "version: extra argument" version now
code_of 2 "shell --as without allow_as" shell --config "$cfg" --as mallory --workers 0
check "--as refusal names the setting" contains "$out" "shell.allow_as"

# --- config errors: 2, naming file, line and key ---
code_of 2 "missing config file" config check --config "$tmp/nope.yaml"
check "missing file is named" contains "$out" "$tmp/nope.yaml: cannot read"
printf 'redis: redis://h\npostgres: x\nworkers: lots\n' >"$tmp/bad.yaml"
code_of 2 "invalid config" config check --config "$tmp/bad.yaml"
check "invalid config: file:line: key: reason" contains "$out" "$tmp/bad.yaml:3: workers: expected a whole number"
NOMATRON_CONFIG=$tmp/bad.yaml code_of 2 "\$NOMATRON_CONFIG is read" config check
mkdir "$tmp/cwd" && cp "$cfg" "$tmp/cwd/nomatron.yaml"
(cd "$tmp/cwd" && "$NOMATRON" config check >/dev/null 2>&1); rc=$?
check "./nomatron.yaml is the default" equals "$rc" 0
code_of 2 "shell with an invalid config" shell --config "$tmp/bad.yaml"
code_of 0 "config check" config check --config "$cfg"
check "config check prints the policy" contains "$out" "environment staging"
export NOMATRON_HMAC_KEY=0123456789abcdef0123456789abcdef
SLACK_APP_TOKEN=xapp-x SLACK_BOT_TOKEN=xoxb-x MATTERMOST_TOKEN=m NOMAD_TOKEN_PROD=t \
  code_of 0 "config check on the example (every key)" config check --config "$SRC/deploy/nomatron.example.yaml"
check "... shows the production policy" contains "$out" "2 distinct people from sre (bob, carol)"
check "... redacts the signing key" bash -c '! grep -q 0123456789abcdef <<<"$0"' "$out"
SLACK_BOT_TOKEN=xoxb-x MATTERMOST_TOKEN=m NOMAD_TOKEN_PROD=t \
  code_of 2 "config check names an unset variable" config check --config "$SRC/deploy/nomatron.example.yaml"
check "... by name, file and line" matches "$out" "nomatron.example.yaml:[0-9]+: chat.slack.app_token: environment variable SLACK_APP_TOKEN is not set"

# --- runtime failures: 1 ---
printf 'redis: redis://127.0.0.1:1\npostgres: "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2"\n' >"$tmp/down.yaml"
code_of 1 "migrate with PostgreSQL unreachable" migrate --config "$tmp/down.yaml"
code_of 1 "audit verify with PostgreSQL unreachable" audit verify --config "$tmp/down.yaml"

# --- audit verify: 0 intact, 3 broken ---
code_of 0 "migrate" migrate --config "$cfg"
printf 'deploy web v2 to staging\n' | "$NOMATRON" shell --config "$cfg" --timeout 30 >/dev/null 2>&1
code_of 0 "audit verify on an intact chain" audit verify --config "$cfg"
check "audit verify counts what it checked" matches "$out" "intact .*[0-9]+ events"
sql "ALTER TABLE audit_events DISABLE TRIGGER USER; UPDATE audit_events SET detail = 'forged' WHERE id = 2;
     ALTER TABLE audit_events ENABLE TRIGGER USER" >/dev/null
code_of 3 "audit verify on an altered event" audit verify --config "$cfg"
check "... names the event" contains "$out" "event 2"
code_of 0 "audit verify --from past the damage" audit verify --config "$cfg" --from 3

finish

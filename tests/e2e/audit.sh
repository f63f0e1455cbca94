#!/usr/bin/env bash
# The audit trail from the command line (SPEC §2, §7): a few real requests
# through `nomatron shell` against nomad-sim, then export (JSONL and CSV),
# offline verify of the export, show with filters, checkpoint; then
# tampering as the database owner with the guard switched off — an altered,
# a deleted, two swapped events, a truncated tail, an unknown encoding
# version, and the same damage in an exported file — each named by verify.
#   usage: audit.sh NOMATRON NOMAD_SIM
NOMATRON=$1 SIM=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_sim

cfg=$tmp/nomatron.yaml
cat >"$cfg" <<YAML
redis: redis://127.0.0.1:$NOMATRON_REDIS_PORT/$rdb
postgres: "$pg"
workers: 1
environments:
  staging: {nomad: {address: "$nomad", namespace: staging, timeout: 5s}}
jobs:
  web: {tasks: [web], image: registry.example.com/web}
  api: {tasks: [api], image: registry.example.com/api}
YAML

out=
code_of() {
  local want=$1 what=$2; shift 2
  out=$("$NOMATRON" "$@" 2>"$tmp/stderr"); local rc=$?
  if [ "$rc" = "$want" ]; then ok "$what (exit $want)"; else bad "$what: exit $rc, want $want" "$(head -c 400 <<<"$out"; head -c 400 "$tmp/stderr")"; fi
}

code_of 0 "migrate" migrate --config "$cfg"
printf 'deploy web v2 to staging\ndeploy api v3 to staging\n' |
  "$NOMATRON" shell --config "$cfg" --timeout 30 >"$tmp/shell.out" 2>>"$tmp/nomatron.log"
check "shell answered" grep -q "D-2" "$tmp/shell.out"
n=$(sql "SELECT count(*) FROM audit_events")
check "requests left events in the chain ($n)" test "$n" -ge 4

# --- verify, checkpoint ---
code_of 0 "verify intact" audit verify --config "$cfg"
check "... counts events" contains "$out" "$n events verified"
code_of 0 "checkpoint" audit checkpoint --config "$cfg"
head_hash=$(sql "SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1")
check "checkpoint prints head id, hash and count" contains "$out" "head event $n hash $head_hash, $n events"
check "checkpoint is logged" grep -q "audit checkpoint.*head_hash=$head_hash" "$tmp/stderr"
check "checkpoint is recorded" equals "$(sql "SELECT head_id || ' ' || events FROM audit_checkpoints")" "$n $n"

# --- export, offline verify ---
code_of 0 "export jsonl" audit export --config "$cfg" --format jsonl
printf '%s\n' "$out" >"$tmp/export.jsonl"
check "jsonl: begin + events + end" equals "$(wc -l <"$tmp/export.jsonl")" "$((n + 2))"
check "jsonl carries the hashes" contains "$out" "\"hash\":\"$head_hash\""
code_of 0 "verify --file on the export (no config needed)" audit verify --file "$tmp/export.jsonl"
check "... says intact with the last hash" contains "$out" "$n events verified (1..$n), last hash $head_hash"
code_of 0 "verify --file from stdin" audit verify --file - <"$tmp/export.jsonl"
code_of 2 "verify --file with --from" audit verify --file "$tmp/export.jsonl" --from 3
code_of 0 "export --since/--until" audit export --config "$cfg" --format jsonl --since 2000-01-01 --until 2000-01-02
check "... an empty range exports begin and end only" equals "$(wc -l <<<"$out")" 2
code_of 0 "export csv" audit export --config "$cfg" --format csv
check "csv has a header and CRLF" bash -c 'head -n1 <<<"$0" | grep -q $'"'"'^id,request_id,at,.*,hash\r$'"'" "$out"
check "csv has one row per event" equals "$(($(wc -l <<<"$out") - 1))" "$n"

# --- show ---
code_of 0 "show --request D-1" audit show --config "$cfg" --request D-1
check "... lists D-1's events only" bash -c '! grep -v " D-1 " <<<"$0" | grep -q .' "$out"
check "... starts with request.created" contains "$(head -n1 <<<"$out")" "request.created by shell:"
code_of 0 "show --job api --env staging" audit show --config "$cfg" --job api --env staging
check "... only api" bash -c '! grep -v "api@staging" <<<"$0" | grep -q .' "$out"
code_of 0 "show --actor nobody" audit show --config "$cfg" --actor slack:UNOBODY
check "... no events match" contains "$out" "no events match"

# --- awkward text survives export and verify --file ---
printf 'deploy web v3 to staging --reason "=cmd|'"'"'/c calc'"'"'!A1, \"quoted\" ; DROP TABLE x; -- 🚀"\n' |
  "$NOMATRON" shell --config "$cfg" --timeout 30 >/dev/null 2>>"$tmp/nomatron.log"
code_of 0 "export csv after awkward input" audit export --config "$cfg" --format csv
check "csv neutralises a cell starting with = (and quotes it for the comma)" contains "$out" "\"'=cmd|'/c calc'!A1, quoted ; DROP TABLE x; -- 🚀\""
code_of 0 "export jsonl after awkward input" audit export --config "$cfg" --format jsonl
printf '%s\n' "$out" >"$tmp/export2.jsonl"
code_of 0 "verify --file with awkward text" audit verify --file "$tmp/export2.jsonl"
n=$(sql "SELECT count(*) FROM audit_events")

# --- damaged exports ---
# The first event a person made (which line that is depends on how workers interleave).
sed '0,/"actor":"shell:[^"]*"/s//"actor":"shell:mallory"/' "$tmp/export2.jsonl" >"$tmp/bad.jsonl"
cmp -s "$tmp/export2.jsonl" "$tmp/bad.jsonl" && bad "the export has no event by a shell user to alter"
code_of 3 "file: an altered event" audit verify --file "$tmp/bad.jsonl"
check "... named" matches "$out" "event [0-9]+: hash does not match its content \(altered\)"
sed '4d' "$tmp/export2.jsonl" >"$tmp/bad.jsonl"
code_of 3 "file: a deleted event" audit verify --file "$tmp/bad.jsonl"
check "... named" contains "$out" "event 3: missing"
{ sed -n '1,3p' "$tmp/export2.jsonl"; sed -n 5p "$tmp/export2.jsonl"; sed -n 4p "$tmp/export2.jsonl"
  sed -n '6,$p' "$tmp/export2.jsonl"; } >"$tmp/bad.jsonl"
code_of 3 "file: two swapped events" audit verify --file "$tmp/bad.jsonl"
check "... named" contains "$out" "event 3: reordered"
head -n 4 "$tmp/export2.jsonl" >"$tmp/bad.jsonl"
code_of 3 "file: truncated" audit verify --file "$tmp/bad.jsonl"
check "... named" contains "$out" "missing (truncated)"
printf '{"type":"begin"' >"$tmp/bad.jsonl"
code_of 3 "file: not an export" audit verify --file "$tmp/bad.jsonl"
code_of 1 "file: unreadable" audit verify --file "$tmp/nope.jsonl"

# --- tampering in the database (owner, guard off) ---
tamper() { sql "ALTER TABLE audit_events DISABLE TRIGGER USER; $1; ALTER TABLE audit_events ENABLE TRIGGER USER" >/dev/null; }
orig=$(sql "SELECT outcome FROM audit_events WHERE id = 2")
tamper "UPDATE audit_events SET outcome = 'succeeded' WHERE id = 2"
code_of 3 "db: altered event" audit verify --config "$cfg"
check "... named" matches "$out" "event [0-9]+: hash does not match its content \(altered\)"
tamper "UPDATE audit_events SET outcome = '$orig' WHERE id = 2"
code_of 0 "db: restored" audit verify --config "$cfg"

tamper "UPDATE audit_events SET id = 1000000 WHERE id = 3; UPDATE audit_events SET id = 3 WHERE id = 4; UPDATE audit_events SET id = 4 WHERE id = 1000000"
code_of 3 "db: two swapped events" audit verify --config "$cfg"
check "... named" contains "$out" "event 3: reordered"
tamper "UPDATE audit_events SET id = 1000000 WHERE id = 3; UPDATE audit_events SET id = 3 WHERE id = 4; UPDATE audit_events SET id = 4 WHERE id = 1000000"
code_of 0 "db: swapped back" audit verify --config "$cfg"

tamper "UPDATE audit_events SET enc_version = 9 WHERE id = 4"
code_of 3 "db: unknown encoding version" audit verify --config "$cfg"
check "... named" contains "$out" "event 4: unknown encoding version 9"
tamper "UPDATE audit_events SET enc_version = 1 WHERE id = 4"

code_of 0 "checkpoint before the damage" audit checkpoint --config "$cfg"
tamper "DELETE FROM audit_events WHERE id >= $((n - 1))"
code_of 3 "db: truncated tail (caught by the checkpoint)" audit verify --config "$cfg"
check "... named" contains "$out" "event $((n - 1)): missing: the chain ends at event $((n - 2))"
code_of 0 "export of the truncated chain" audit export --config "$cfg" --format jsonl
printf '%s\n' "$out" >"$tmp/trunc.jsonl"
code_of 3 "file: truncated tail against the checkpoint in the export" audit verify --file "$tmp/trunc.jsonl"
check "... named" contains "$out" "missing: checkpoint"
code_of 3 "checkpoint refuses a chain shorter than an earlier checkpoint" audit checkpoint --config "$cfg"
check "... says why" contains "$(cat "$tmp/stderr")" "tail truncated"
tamper "DELETE FROM audit_events WHERE id = 2"
code_of 3 "db: deleted event" audit verify --config "$cfg"
check "... named" contains "$out" "gap: event 2 missing"
code_of 3 "checkpoint refuses a chain with a gap" audit checkpoint --config "$cfg"
check "... says why" contains "$(cat "$tmp/stderr")" "events are missing"

# --- cannot run: 1 ---
printf 'redis: redis://127.0.0.1:1\npostgres: "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2"\n' >"$tmp/down.yaml"
code_of 1 "export with PostgreSQL unreachable" audit export --config "$tmp/down.yaml" --format jsonl

finish

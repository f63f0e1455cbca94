# Shared by deploy/dev/up, deploy/dev/test and .ci/run: install what is missing,
# start Redis and PostgreSQL on loopback in a private directory, stop them again.
# Source it; it defines functions and changes nothing by itself.
# Facts behind the details: shared/reference/toolchain.md ("Gotchas").

NM_PKGS=(build-essential cmake pkg-config clang python3 libuv1-dev libcurl4-openssl-dev libjson-c-dev
         libhiredis-dev libpq-dev libyaml-dev libssl-dev libcmocka-dev libwebsockets-dev
         redis-server redis-tools postgresql postgresql-client curl openssl)

nm_log() { printf '[%s] %s\n' "${NM_LOG_TAG:-nomatron}" "$*" >&2; }

# Installs missing packages; never upgrades what the machine already has.
nm_install_deps() {
  local missing=() p
  for p in "${NM_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" != 0 ]; then
    nm_log "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    return 1
  fi
  nm_log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null
}

nm_pgbin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1; }

# Runs a PostgreSQL server binary as the postgres user when we are root
# (PostgreSQL refuses to run as root), from / so runuser has a usable cwd.
nm_as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

# nm_services_start STATE_DIR REDIS_PORT PG_PORT
# Starts (or reuses) both servers; sets NM_STARTED_REDIS / NM_STARTED_PG and
# exports PG_CONNINFO (role and database "nomatron") and REDIS_URL.
nm_services_start() {
  local state=$1 rport=$2 pport=$3 pgbin pgdata
  pgbin=$(nm_pgbin); pgdata=$state/pgdata
  NM_STATE=$state NM_REDIS_PORT=$rport NM_PG_PORT=$pport NM_PGDATA=$pgdata
  NM_STARTED_REDIS=0 NM_STARTED_PG=0
  mkdir -p -m 755 "$state"

  if redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG; then
    nm_log "redis already on 127.0.0.1:$rport (reused)"
  else
    # --daemonize yes returns 0 even if the bind fails: poll for PONG.
    redis-server --port "$rport" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
      --maxmemory-policy noeviction --dir "$state" --pidfile "$state/redis.pid" --logfile "$state/redis.log"
    NM_STARTED_REDIS=1
    local _
    for _ in $(seq 50); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG || { cat "$state/redis.log" >&2; return 1; }
    nm_log "redis started on 127.0.0.1:$rport"
  fi

  if nm_as_pg "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    nm_log "postgres already running in $pgdata (reused)"
  else
    rm -rf "$pgdata"
    if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres -m 700 "$pgdata"; else install -d -m 700 "$pgdata"; fi
    nm_as_pg "$pgbin/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    NM_STARTED_PG=1
    nm_as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 30 \
      -o "-p $pport -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null || { cat "$pgdata/server.log" >&2; return 1; }
    nm_log "postgres started on 127.0.0.1:$pport"
  fi
  psql "host=127.0.0.1 port=$pport user=postgres dbname=postgres" -v ON_ERROR_STOP=1 -q <<'SQL' >/dev/null
SET client_min_messages = warning;
SELECT 'CREATE ROLE nomatron LOGIN CREATEDB' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nomatron')\gexec
SELECT 'CREATE DATABASE nomatron OWNER nomatron' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'nomatron')\gexec
SQL
  export PG_CONNINFO="host=127.0.0.1 port=$pport user=nomatron dbname=nomatron"
  export PG_ADMIN_CONNINFO="host=127.0.0.1 port=$pport user=postgres dbname=postgres"
  export REDIS_URL="redis://127.0.0.1:$rport/0"
  export NOMATRON_REDIS_PORT=$rport NOMATRON_PG_PORT=$pport
}

# Stops only what nm_services_start started. redis-cli shutdown and
# pg_ctl -w are synchronous (a kill -0 loop is fooled by zombies here).
nm_services_stop() {
  if [ "${NM_STARTED_REDIS:-0}" = 1 ]; then redis-cli -p "$NM_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
  if [ "${NM_STARTED_PG:-0}" = 1 ]; then nm_as_pg "$(nm_pgbin)/pg_ctl" -D "$NM_PGDATA" -m fast -w stop >/dev/null 2>&1 || true; fi
  NM_STARTED_REDIS=0 NM_STARTED_PG=0
}

# nm_build BUILD_DIR [cmake args...]: configure and build quietly; show the log on failure.
nm_build() {
  local dir=$1; shift
  mkdir -p "$dir"
  if ! { cmake -S "$NM_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Debug "$@" && cmake --build "$dir" -j"$(nproc)"; } \
      >"$dir/build.log" 2>&1; then
    grep -E 'error|Error|warning' "$dir/build.log" | head -n 60 >&2 || tail -n 60 "$dir/build.log" >&2
    nm_log "build failed in $dir (full log: $dir/build.log)"
    return 1
  fi
  nm_log "built $dir"
}

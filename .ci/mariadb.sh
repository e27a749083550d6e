#!/usr/bin/env bash
# A throw-away MariaDB server on loopback for stickyrec's database tests and logging benchmark.
#
#   source .ci/mariadb.sh        # start (or reuse) the server and export STICKYREC_TEST_MYSQL_URL
#   .ci/mariadb.sh               # the same, printing `export STICKYREC_TEST_MYSQL_URL=...` on stdout
#   .ci/mariadb.sh stop          # stop the server and delete its data directory
#
# Installs mariadb-server from Debian's packages when mysqld is missing (needs root), initialises a data
# directory under $STICKYREC_MARIADB_DIR (default /tmp/stickyrec-mariadb), starts mysqld bound to 127.0.0.1
# on $STICKYREC_MARIADB_PORT (default 33306) with its own socket, waits until it answers, and creates the
# database `stickyrec_test` and a user `stickyrec` (password $STICKYREC_MARIADB_PASSWORD, default
# stickyrec-test) who may also create and drop databases named stickyrec_test* (the tests use one per test).
# Idempotent: a second run reuses the running server. Any failure prints why and exits (or returns) non-zero.

_stickyrec_mariadb() (
  set -euo pipefail
  local dir="${STICKYREC_MARIADB_DIR:-/tmp/stickyrec-mariadb}"
  local port="${STICKYREC_MARIADB_PORT:-33306}"
  local password="${STICKYREC_MARIADB_PASSWORD:-stickyrec-test}"
  local datadir="$dir/data" socket="$dir/mysqld.sock" pidfile="$dir/mysqld.pid" errlog="$dir/mysqld.err"
  fail() { echo "mariadb.sh: $*" >&2; exit 1; }
  client() { mariadb --no-defaults --protocol=socket --socket="$socket" -uroot "$@"; }
  answers() { mariadb-admin --no-defaults --protocol=socket --socket="$socket" -uroot --connect-timeout=2 \
                ping >/dev/null 2>&1; }

  if [ "${1:-}" = stop ]; then
    if [ -f "$pidfile" ]; then
      local pid; pid="$(cat "$pidfile")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && fail "mysqld (pid $pid) did not stop"
    fi
    rm -rf "$dir"
    echo "mariadb.sh: stopped and removed $dir" >&2
    return 0
  fi

  if ! command -v mysqld >/dev/null || ! command -v mariadb-install-db >/dev/null; then
    [ "$(id -u)" = 0 ] || fail "mysqld is not installed and installing it needs root: apt-get install -y mariadb-server"
    echo "mariadb.sh: installing mariadb-server from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || fail "apt-get update failed"
    # policy-rc.d may forbid starting the packaged service; that is fine, we start our own server below
    apt-get install -y -qq mariadb-server >&2 || fail "apt-get install -y mariadb-server failed"
    command -v mysqld >/dev/null || fail "mariadb-server installed but mysqld is not on PATH"
  fi

  local run_as=(); local owner=""
  if [ "$(id -u)" = 0 ]; then
    if id mysql >/dev/null 2>&1; then owner=mysql; else owner=root; fi
    run_as=(--user="$owner")
  fi

  if answers; then
    echo "mariadb.sh: reusing the server on 127.0.0.1:$port ($dir)" >&2
  else
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      fail "mysqld (pid $(cat "$pidfile")) is running but does not answer on $socket; see $errlog or run: $0 stop"
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      fail "port $port on 127.0.0.1 is taken by another program; set STICKYREC_MARIADB_PORT"
    fi
    mkdir -p "$dir"
    [ -n "$owner" ] && chown "$owner" "$dir"
    if [ ! -d "$datadir/mysql" ]; then
      rm -rf "$datadir"
      echo "mariadb.sh: initialising a data directory in $datadir" >&2
      mariadb-install-db --no-defaults --datadir="$datadir" "${run_as[@]}" --auth-root-authentication-method=socket \
        --skip-test-db >"$dir/install.log" 2>&1 || { tail -n 20 "$dir/install.log" >&2; fail "mariadb-install-db failed"; }
    fi
    echo "mariadb.sh: starting mysqld on 127.0.0.1:$port" >&2
    setsid mysqld --no-defaults --datadir="$datadir" --socket="$socket" --port="$port" --bind-address=127.0.0.1 \
      --pid-file="$pidfile" --log-error="$errlog" "${run_as[@]}" --skip-name-resolve --skip-log-bin \
      --innodb-buffer-pool-size=256M --innodb-log-file-size=256M --max-allowed-packet=64M \
      </dev/null >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 1 300); do
      answers && break
      kill -0 "$pid" 2>/dev/null || { tail -n 20 "$errlog" >&2 || true; fail "mysqld exited while starting"; }
      sleep 0.1
    done
    answers || { tail -n 20 "$errlog" >&2 || true; fail "mysqld did not answer within 30 s"; }
  fi

  client <<SQL || fail "could not create the database and user"
CREATE DATABASE IF NOT EXISTS stickyrec_test;
CREATE USER IF NOT EXISTS 'stickyrec'@'127.0.0.1' IDENTIFIED BY '$password';
ALTER USER 'stickyrec'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`stickyrec\\_test%\`.* TO 'stickyrec'@'127.0.0.1';
SQL
  echo "mysql+pymysql://stickyrec:$password@127.0.0.1:$port/stickyrec_test"
)

if [ "${BASH_SOURCE[0]}" != "$0" ]; then  # sourced: export the URL into the caller's shell
  if STICKYREC_TEST_MYSQL_URL="$(_stickyrec_mariadb "$@")"; then
    [ "${1:-}" = stop ] && unset STICKYREC_TEST_MYSQL_URL || export STICKYREC_TEST_MYSQL_URL
  else
    unset STICKYREC_TEST_MYSQL_URL
    echo "mariadb.sh: no MariaDB server was started (see above); STICKYREC_TEST_MYSQL_URL is unset" >&2
    return 1
  fi
else
  url="$(_stickyrec_mariadb "$@")" || exit 1
  [ -n "$url" ] && echo "export STICKYREC_TEST_MYSQL_URL=$url"
  exit 0
fi

#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL cluster on loopback, then
# stops the cluster and removes it, whatever the command did. The command
# finds the cluster's URL in ONCELY_TEST_POSTGRES (superuser `oncely`, no
# password); tests make a database of their own in it.
#
# Debian's PostgreSQL (initdb, pg_ctl) is installed when missing. It refuses
# to run as root, so as root the cluster runs as the `postgres` user.
set -euo pipefail

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
bin=$(find_bin)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  command -v apt-get >/dev/null || { echo "PostgreSQL is missing: install it (initdb, pg_ctl)" >&2; exit 1; }
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  echo "installing PostgreSQL (Debian's postgresql)" >&2
  $sudo apt-get update -q && $sudo apt-get install -y -q postgresql >&2
  bin=$(find_bin)
fi

dir=$(mktemp -d /tmp/oncely-postgres.XXXXXX)
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi
# A free port on loopback, from the kernel.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -A trust -U oncely --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }

export ONCELY_TEST_POSTGRES="postgres://oncely@127.0.0.1:$port/postgres"
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (ONCELY_TEST_POSTGRES)" >&2
set +e
"$@"
status=$?
set -e
exit $status

#!/bin/sh
# pg.sh CMD [ARG...] - runs CMD against a throwaway PostgreSQL server
# (docs/operations.md) and exits with CMD's status.
#
# The server lives in a temporary directory: socket there, TCP on
# 127.0.0.1 only, the first free port from 5433.  Durability settings are
# ON (fsync, synchronous_commit, full_page_writes, data checksums): the
# storage suite and benchmarks measure what production gets.  CMD sees
# SOKO_TEST_PG (a libpq conninfo), DATABASE_URL and PGHOST/PGPORT/PGUSER/
# PGDATABASE for database "soko".  The server is stopped and the directory
# removed on every exit.  Never skips: if PostgreSQL cannot start, this
# fails loudly.
#
# SOKO_PG_OPTS adds server options ("-c shared_buffers=1GB ..."); the
# benchmarks use it for memory sizing, never to weaken durability.
set -eu

if [ $# -eq 0 ]; then
	echo "usage: sh tests/pg.sh CMD [ARG...]" >&2
	exit 2
fi

die() {
	echo "pg.sh: $*" >&2
	exit 1
}

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] ||
	die "no PostgreSQL server in /usr/lib/postgresql/*/bin" \
	    "(install postgresql; reference/toolchain.md §5)"

# initdb and postgres refuse to run as root
if [ "$(id -u)" -eq 0 ]; then
	AS_PG="runuser -u postgres --"
else
	AS_PG=""
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/soko-pg.XXXXXX")
started=0
cleanup() {
	rc=$?
	if [ "$started" -eq 1 ]; then
		$AS_PG "$PGBIN/pg_ctl" -D "$D/data" -m fast -w stop \
			>/dev/null 2>&1 ||
			echo "pg.sh: warning: pg_ctl stop failed" >&2
	fi
	rm -rf "$D"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

[ -z "$AS_PG" ] || chown postgres:postgres "$D"
chmod 755 "$D"

if ! $AS_PG "$PGBIN/initdb" -D "$D/data" -U postgres -A trust -E UTF8 \
	--locale=C.UTF-8 --data-checksums >"$D/initdb.log" 2>&1; then
	cat "$D/initdb.log" >&2
	die "initdb failed"
fi

PORT=5433
while "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1 ||
	[ $? -ne 2 ]; do
	PORT=$((PORT + 1))
	[ "$PORT" -lt 5533 ] || die "no free port in 5433..5532"
done

started=1
if ! $AS_PG "$PGBIN/pg_ctl" -D "$D/data" -l "$D/server.log" -w -t 60 \
	-o "-k $D -p $PORT -c listen_addresses=127.0.0.1 \
	-c fsync=on -c synchronous_commit=on -c full_page_writes=on \
	-c shared_buffers=256MB -c max_wal_size=2GB -c max_connections=100 \
	${SOKO_PG_OPTS:-}" \
	start >/dev/null; then
	cat "$D/server.log" >&2 2>/dev/null || true
	die "PostgreSQL did not start (port $PORT)"
fi

"$PGBIN/createdb" -h "$D" -p "$PORT" -U postgres soko ||
	die "createdb soko failed"

export PGHOST="$D" PGPORT="$PORT" PGUSER=postgres PGDATABASE=soko
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/soko"
export SOKO_TEST_PG="host=$D port=$PORT user=postgres dbname=soko"

set +e
"$@"
status=$?
set -e
if [ $status -ne 0 ] && [ -s "$D/server.log" ]; then
	echo "pg.sh: command failed ($status); server log tail:" >&2
	tail -n 20 "$D/server.log" >&2
fi
exit $status

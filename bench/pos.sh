#!/bin/sh
# pos.sh BUILD RESULTS - the POS channel benchmarks (docs/benchmarks.md
# "POS channel"), run by bench/run.sh after the ledger benchmarks.
# Appends rows to RESULTS (bench/results.tsv):
#
#   pos.e2e.sqlite      approved float transfers/s, end to end over TCP from
#                       a soko-pos fleet (POS_TERMINALS connections, one
#                       transaction per request frame, closed loop
#                       POS_WINDOW per terminal); baseline
#                       ledger.sqlite.uniform (already in RESULTS)
#   pos.e2e.sqlite.tls  the same over TLS (the listener with an EC P-256
#                       certificate, soko-pos --tls-ca); baseline
#                       pos.e2e.sqlite of this run (ratio: what TLS
#                       keeps); no row without the openssl tool
#   pos.e2e.pg          the same on the throwaway PostgreSQL of tests/pg.sh
#   pos.p99_ms_at_25k   open loop, Poisson arrivals at POS_RATE/s: p99 ms
#                       from the scheduled send time (no coordinated
#                       omission)
#   pos.e2e.sqlite.wire the closed loop of pos.e2e.sqlite from bench/pos_wire
#                       (the same connections and window, the wire protocol
#                       without the terminals' queues: sokod's side alone,
#                       since the simulated fleet costs more CPU per
#                       transfer than sokod on the same two cores);
#                       baseline ledger.sqlite.uniform.  Not a terminal
#                       figure: pos_wire stores nothing before it sends
#   pos.p99_ms_at_25k.wire  the open loop of pos.p99_ms_at_25k from
#                       pos_wire (p50 in pos.p50_ms_at_25k.wire)
#   pos.e2e.pg.wire     pos.e2e.sqlite.wire on PostgreSQL
#   pos.status          STATUS req/s, same connections; baseline
#                       redis-benchmark -t get with as many connections
#                       (no row without redis: nothing is invented)
#   pos.replay.10k_s    one terminal's 10,000 offline transfers, from
#                       connect to the last durable acknowledgement
#   pos.replay.fleet_s  POS_TERMINALS terminals x 100 offline, reconnecting
#                       together, to drained
#   pos.idle_conn_bytes sokod RSS growth per idle logged-in connection at
#                       POS_IDLE_CONNS connections
#   term.rss_kb         VmHWM of a minimal libsokoterm host (login, 2 x 100
#                       transfers, offline queue replay): everything
#                       resident, shared libraries' code included
#   term.anon_peak_kb   the same run's peak private anonymous memory
#                       (RssAnon: heap, stacks, SQLite's cache; no shared
#                       library pages), the envelope's G9(e) measure
#   term.lib_heap_kb    peak of what libsokoterm itself allocated (its
#                       allocator hook), SQLite's heap not included
#
# Each figure is the median of BENCH_RUNS runs (default 3) of
# POS_SECONDS (default 10; after POS_WARMUP, default 2, which is not
# counted).  Every run's report goes to BUILD/bench/pos.log.  Every fleet
# run ends with soko-pos's own check (each approved transfer found once by
# STATUS, floats moved by exactly the approved amounts, queues drained); a
# failed check fails the benchmark.
#
# Durability: sokod's database is on the real disk under BUILD/bench
# (refused on tmpfs), SQLite WAL + synchronous=FULL, PostgreSQL
# synchronous_commit=on, exactly as in production.  The simulated
# terminals' queue files are on tmpfs (/dev/shm, issue #3: each real
# terminal has its own flash) and opened through SQLite's unix-excl VFS
# (one process per queue file: no POSIX lock calls; WAL + FULL as always).
#
# Environment: BENCH_RUNS, POS_SECONDS, POS_WARMUP, POS_TERMINALS (1000),
# POS_WINDOW (8, sokod's pos_max_inflight), POS_THREADS (soko-pos threads,
# 2), POS_RATE (25000), POS_IDLE_CONNS (10000), BENCH_PG=0 skips
# PostgreSQL.  Internal: pos.sh --pg-inner BUILD OUT (run by tests/pg.sh).
set -eu

RUNS=${BENCH_RUNS:-3}
SECS=${POS_SECONDS:-10}
WARM=${POS_WARMUP:-2}
NTERM=${POS_TERMINALS:-1000}
WIN=${POS_WINDOW:-8}
THREADS=${POS_THREADS:-2}
RATE=${POS_RATE:-25000}
IDLE=${POS_IDLE_CONNS:-10000}
IDLE_PROCS=4 # soko-pos processes for the idle connections (fd limit)
API_KEY=pos-bench-admin-key-0123456789
HERE=$(cd "$(dirname "$0")" && pwd)

die() {
	echo "bench/pos.sh: $*" >&2
	exit 1
}

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (b + 0 == 0 || a == "nan" || b == "nan") print "nan";
		else printf "%.2f\n", a / b }'
}

# kv FILE KEY: the value of KEY=... in soko-pos's report FILE
kv() {
	tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | head -1
}

# sokod_start DIR STORE [EXTRA -o ...]: starts sokod in the background
# (pid in DIR/sokod.pid), waits for its readiness line; POS port in
# DIR/pos.port, HTTP port in DIR/http.port
sokod_start() {
	d=$1
	st=$2
	shift 2
	: >"$d/sokod.out"
	SOKO_ADMIN_API_KEY=$API_KEY "$BUILD/sokod" -o "store=$st" \
		-o http_listen=127.0.0.1:0 -o pos_listen=127.0.0.1:0 \
		-o "pos_kek_file=$d/kek" -o log_level=warn "$@" \
		>"$d/sokod.out" 2>"$d/sokod.err" &
	echo $! >"$d/sokod.pid"
	i=0
	while ! grep -q "sokod ready" "$d/sokod.out"; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || {
			cat "$d/sokod.err" >&2
			die "sokod did not become ready"
		}
		kill -0 "$(cat "$d/sokod.pid")" 2>/dev/null || {
			cat "$d/sokod.err" >&2
			die "sokod exited"
		}
		sleep 0.1
	done
	tr ' ' '\n' <"$d/sokod.out" | sed -n 's/^pos=.*://p' >"$d/pos.port"
	tr ' ' '\n' <"$d/sokod.out" | sed -n 's/^http=.*://p' >"$d/http.port"
}

sokod_stop() {
	p=$(cat "$1/sokod.pid")
	kill -TERM "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

# commit_stats DIR: "commits seconds requests" of DIR's sokod group commits
# so far (its /metrics), or nothing without curl
commit_stats() {
	command -v curl >/dev/null || return 0
	curl -s -H "Authorization: Bearer $API_KEY" \
		"http://127.0.0.1:$(cat "$1/http.port")/metrics" 2>/dev/null |
		awk '$1 == "soko_store_commit_seconds_count" { c = $2 }
			$1 == "soko_store_commit_seconds_sum" { s = $2 }
			$1 == "soko_store_commit_batch_size_sum" { n = $2 }
			END { if (c != "") print c, s, n }'
}

# fleet DIR LOG NAME ARGS...: one soko-pos fleet run against DIR's sokod
# with fresh tmpfs queues; its report is appended to LOG and left in
# DIR/last.out; a failed check fails the benchmark
fleet() {
	d=$1
	log=$2
	name=$3
	shift 3
	rm -rf "$QDIR"
	mkdir -p "$QDIR"
	echo "== pos $name: soko-pos fleet $*" >&2
	cs0=$(commit_stats "$d")
	if ! "$BUILD/soko-pos" fleet --server "127.0.0.1:$(cat "$d/pos.port")" \
		--provision "$d/terminals.csv" --queue-dir "$QDIR" \
		--queue-vfs unix-excl --drain 60 "$@" >"$d/last.out" 2>"$d/last.err"; then
		cat "$d/last.out" "$d/last.err" >&2
		die "soko-pos fleet failed ($name)"
	fi
	# sokod's group commits during the whole run (set-up, warm-up, run,
	# drain and check): what bounds the writer (profile evidence)
	cs1=$(commit_stats "$d")
	if [ -n "$cs0" ] && [ -n "$cs1" ]; then
		echo "$cs0 $cs1" | awk '{ c = $4 - $1; if (c > 0)
			printf "sokod_commits n=%d avg_batch=%.1f avg_commit_ms=%.2f\n",
				c, ($6 - $3) / c, ($5 - $2) * 1000 / c }' >>"$d/last.out"
	fi
	grep -E '^(fleet|window|replay|latency|codes|check|sokod_commits) ' \
		"$d/last.out" >&2
	{
		echo "# $name: $*"
		cat "$d/last.out"
	} >>"$log"
	echo "$name $(tr '\n' ' ' <"$d/last.out")" >>"$log.lines"
}

# wire DIR LOG NAME ARGS...: one bench/pos_wire run against DIR's sokod
# (sokod's side alone: no terminal queues); report as fleet()'s; a failed
# check (unanswered, not APPROVED, floats off) fails the benchmark
wire() {
	d=$1
	log=$2
	name=$3
	shift 3
	echo "== pos $name: pos_wire $*" >&2
	if ! "$BUILD/bench/pos_wire" --server "127.0.0.1:$(cat "$d/pos.port")" \
		--provision "$d/terminals.csv" --drain 60 \
		--http "127.0.0.1:$(cat "$d/http.port")" \
		--admin-key-file "$d/admin.key" "$@" \
		>"$d/last.out" 2>"$d/last.err"; then
		cat "$d/last.out" "$d/last.err" >&2
		die "pos_wire failed ($name)"
	fi
	grep -E '^(wire|window|latency|codes|check) ' "$d/last.out" >&2
	{
		echo "# $name: pos_wire $*"
		cat "$d/last.out"
	} >>"$log"
	echo "$name $(tr '\n' ' ' <"$d/last.out")" >>"$log.lines"
}

# setup DIR STORE N: KEK, provisioning of N funded terminals
setup() {
	mkdir -p "$1"
	(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$1/kek" &&
		echo >>"$1/kek" && echo "$API_KEY" >"$1/admin.key")
	"$BUILD/bench/pos_setup" --store "$2" --kek "$1/kek" --terminals "$3" \
		--csv "$1/terminals.csv" --prefix "P$$" >&2 ||
		die "pos_setup failed"
}

# e2e_runs DIR LOG NAME: the closed-loop throughput runs
e2e_runs() {
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		fleet "$1" "$2" "$3" --terminals "$NTERM" --threads "$THREADS" \
			--closed-loop "$WIN" --duration "$SECS" --warmup "$WARM" \
			--http "127.0.0.1:$(cat "$1/http.port")" \
			--admin-key-file "$1/admin.key"
		i=$((i + 1))
	done
}

# field LOG NAME KEY: KEY's values in NAME's report lines
field() {
	grep "^$2 " "$1.lines" | tr ' ' '\n' | sed -n "s/^$3=//p"
}

if [ "${1:-}" = "--pg-inner" ]; then
	BUILD=$2
	OUT=$3
	[ -n "${SOKO_TEST_PG:-}" ] || die "--pg-inner needs SOKO_TEST_PG"
	W=$(mktemp -d "$BUILD/bench/pospg.XXXXXX")
	QDIR=/dev/shm/soko-pos-bench-pg.$$
	trap 'sokod_stop "$W" 2>/dev/null; rm -rf "$W" "$QDIR"' EXIT
	setup "$W" "pg:$SOKO_TEST_PG" "$NTERM"
	sokod_start "$W" "pg:$SOKO_TEST_PG"
	: >"$OUT"
	: >"$OUT.lines"
	e2e_runs "$W" "$OUT" e2e_pg
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		wire "$W" "$OUT" e2e_pg_wire --terminals "$NTERM" --threads 1 \
			--window "$WIN" --duration "$SECS" --warmup "$WARM"
		i=$((i + 1))
	done
	exit 0
fi

BUILD=${1:-build}
RESULTS=${2:-bench/results.tsv}
for b in sokod soko-pos bench/pos_setup bench/pos_wire bench/term_rss; do
	[ -x "$BUILD/$b" ] || die "$BUILD/$b missing (make bench builds it)"
done
[ -d /dev/shm ] || die "no /dev/shm for the simulated terminals' queues"
W=$(mktemp -d "$BUILD/bench/pos.XXXXXX")
QDIR=/dev/shm/soko-pos-bench.$$
REDIS_PID=
trap 'for d in "$W"/*/; do [ -f "$d/sokod.pid" ] && sokod_stop "$d"; done 2>/dev/null
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
	rm -rf "$W" "$QDIR"' EXIT
fstype=$(stat -f -c %T "$W")
case $fstype in
tmpfs | ramfs) die "$W is on $fstype: sokod's database needs the real disk" ;;
esac
LOG=$BUILD/bench/pos.log
: >"$LOG.lines"
{
	echo "# bench/pos.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) runs=$RUNS" \
		"seconds=$SECS warmup=$WARM terminals=$NTERM window=$WIN" \
		"threads=$THREADS rate=$RATE idle=$IDLE fs=$fstype"
	echo "# $(nproc) cpus, $(uname -sr)"
} >"$LOG"

# ---- SQLite: throughput, open-loop latency, status, replay -----------
S=$W/sqlite
setup "$S" "sqlite:$S/soko.db" "$NTERM"
sokod_start "$S" "sqlite:$S/soko.db"
i=0
while [ "$i" -lt "$RUNS" ]; do
	# interleaved, so background noise hits every figure alike
	fleet "$S" "$LOG" e2e_sqlite --terminals "$NTERM" --threads "$THREADS" \
		--closed-loop "$WIN" --duration "$SECS" --warmup "$WARM" \
		--http "127.0.0.1:$(cat "$S/http.port")" \
		--admin-key-file "$S/admin.key"
	fleet "$S" "$LOG" open_loop --terminals "$NTERM" --threads "$THREADS" \
		--rate "$RATE" --duration "$SECS" --warmup "$WARM"
	fleet "$S" "$LOG" status --terminals "$NTERM" --threads "$THREADS" \
		--status --closed-loop "$WIN" --duration "$SECS" --warmup "$WARM"
	wire "$S" "$LOG" e2e_wire --terminals "$NTERM" --threads 1 \
		--window "$WIN" --duration "$SECS" --warmup "$WARM"
	wire "$S" "$LOG" open_wire --terminals "$NTERM" --threads 1 \
		--rate "$RATE" --duration "$SECS" --warmup "$WARM"
	fleet "$S" "$LOG" replay_10k --terminals 1 --offline 10000 \
		--http "127.0.0.1:$(cat "$S/http.port")" \
		--admin-key-file "$S/admin.key"
	fleet "$S" "$LOG" replay_fleet --terminals "$NTERM" \
		--threads "$THREADS" --offline 100
	i=$((i + 1))
done
# 0 duplicates after a forced reconnect mid-replay: links dropped every
# 50 ms while 100 terminals replay 100 each; the check must pass (not a
# figure: the drops slow the replay down on purpose)
fleet "$S" "$LOG" replay_drops --terminals 100 --offline 100 \
	--drop-every 0.05 --max-reconnect-ms 50 \
	--http "127.0.0.1:$(cat "$S/http.port")" --admin-key-file "$S/admin.key"
# term.rss_kb: a minimal host, its own queue file, against the same sokod
l1=$(sed -n 2p "$S/terminals.csv")
l2=$(sed -n 3p "$S/terminals.csv")
rm -f "$W/term.db" "$W/term.db-wal" "$W/term.db-shm"
"$BUILD/bench/term_rss" 127.0.0.1 "$(cat "$S/pos.port")" \
	"$(echo "$l1" | cut -d, -f1)" "$(echo "$l1" | cut -d, -f3)" \
	"$(echo "$l2" | cut -d, -f2)" "$W/term.db" 100 >"$W/term.out" \
	2>"$W/term.err" || {
	cat "$W/term.out" "$W/term.err" >&2
	die "term_rss failed"
}
cat "$W/term.out" >&2
{
	cat "$W/term.out"
	# what the peak is made of: resident kB per mapping, summed by file
	awk '/rss_kb=/ { split($2, a, "="); s[$3] += a[2] }
		END { for (k in s) print "term_rss_map " s[k] " kB " k }' \
		"$W/term.err" | sort -k2 -rn
} >>"$LOG"
term_kb=$(kv "$W/term.out" vm_hwm_kb)
term_anon_kb=$(kv "$W/term.out" anon_peak_kb)
term_lib_kb=$(kv "$W/term.out" lib_heap_peak_kb)
sokod_stop "$S"

# ---- TLS: the closed loop again, over TLS, on the same database --------
# (after the plain rounds, not interleaved: sokod restarts with the
# certificate; the handshakes of the 1,000 logins fall in the warm-up)
tls_e2e=
if command -v openssl >/dev/null; then
	T=$W/tls
	mkdir -p "$T"
	(cd "$T" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
			-nodes -days 2 -keyout ca.key -out ca.pem \
			-subj "/CN=soko bench CA" \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign &&
		printf '%s\n' basicConstraints=CA:FALSE \
			keyUsage=critical,digitalSignature \
			extendedKeyUsage=serverAuth subjectAltName=IP:127.0.0.1 \
			>server.ext &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout server.key -out server.csr -subj /CN=127.0.0.1 &&
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
			-CAcreateserial -days 2 -out server.pem -extfile server.ext &&
		chmod 600 server.key) >"$T/openssl.log" 2>&1 ||
		die "openssl could not make the bench certificate"
	sokod_start "$S" "sqlite:$S/soko.db" \
		-o "pos_tls_cert_file=$T/server.pem" \
		-o "pos_tls_key_file=$T/server.key"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		fleet "$S" "$LOG" e2e_tls --terminals "$NTERM" \
			--threads "$THREADS" --closed-loop "$WIN" \
			--duration "$SECS" --warmup "$WARM" --tls-ca "$T/ca.pem" \
			--http "127.0.0.1:$(cat "$S/http.port")" \
			--admin-key-file "$S/admin.key"
		i=$((i + 1))
	done
	sokod_stop "$S"
	tls_e2e=$(field "$LOG" e2e_tls answered_per_s | median)
else
	echo "== no openssl tool: no pos.e2e.sqlite.tls row" >&2
fi

# ---- redis GET with as many connections (the pos.status baseline) -----
redis_gets=
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
	rport=$((20000 + $$ % 20000))
	redis-server --port "$rport" --bind 127.0.0.1 --save '' \
		--appendonly no --maxclients "$((NTERM + 100))" \
		--daemonize no >"$W/redis.log" 2>&1 &
	REDIS_PID=$!
	sleep 0.5
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		r=$(redis-benchmark -h 127.0.0.1 -p "$rport" -t get \
			-c "$NTERM" -n 2000000 -q 2>/dev/null | tr '\r' '\n' |
			sed -n 's/^GET: \([0-9.]*\) requests per second.*/\1/p')
		echo "== redis GET -c $NTERM: $r/s" >&2
		echo "redis_get per_s=$r" >>"$LOG.lines"
		echo "# redis-benchmark -t get -c $NTERM -n 2000000: $r/s" >>"$LOG"
		i=$((i + 1))
	done
	kill "$REDIS_PID" 2>/dev/null || true
	wait "$REDIS_PID" 2>/dev/null || true
	REDIS_PID=
	redis_gets=$(field "$LOG" redis_get per_s | median)
else
	echo "== no redis-server/redis-benchmark: no pos.status row" >&2
fi

# ---- idle connections: sokod RSS growth per logged-in connection ------
I=$W/idle
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
setup "$I" "sqlite:$I/soko.db" "$IDLE"
sokod_start "$I" "sqlite:$I/soko.db" -o "pos_max_conns=$((IDLE + 1000))"
ipid=$(cat "$I/sokod.pid")
# warm: one logged-in terminal, so the first connection's one-off
# allocations are not counted
fleet "$I" "$LOG" idle_warm --terminals 2 --count 2 --closed-loop 1
sleep 1
rss0=$(sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$ipid/status")
rm -rf "$QDIR"
mkdir -p "$QDIR"
per=$((IDLE / IDLE_PROCS))
k=0
pids=
while [ "$k" -lt "$IDLE_PROCS" ]; do
	# each process its own slice of the terminals (fds: socket + queue)
	head -1 "$I/terminals.csv" >"$I/slice$k.csv"
	sed -n "$((k * per + 2)),$(((k + 1) * per + 1))p" "$I/terminals.csv" \
		>>"$I/slice$k.csv"
	"$BUILD/soko-pos" fleet --server "127.0.0.1:$(cat "$I/pos.port")" \
		--provision "$I/slice$k.csv" --queue-dir "$QDIR" \
		--queue-vfs unix-excl --idle --duration 600 --drain 1 \
		>"$I/idle$k.out" 2>"$I/idle$k.err" &
	pids="$pids $!"
	k=$((k + 1))
done
t=0
while [ "$(cat "$I"/idle*.out | grep -c '^ready ')" -lt "$IDLE_PROCS" ]; do
	t=$((t + 1))
	[ "$t" -lt 1200 ] || {
		cat "$I"/idle*.err >&2
		die "idle fleets did not log in"
	}
	sleep 0.1
done
sleep 2
rss1=$(sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$ipid/status")
hwm=$(sed -n 's/^VmHWM:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$ipid/status")
conns=$(($(cat "$I"/idle*.out | sed -n 's/^ready logged_in=//p' | paste -sd+)))
for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
for p in $pids; do wait "$p" 2>/dev/null || true; done
idle_b=$(awk -v a="$rss0" -v b="$rss1" -v n="$conns" \
	'BEGIN { printf "%.0f\n", (b - a) * 1024 / n }')
echo "== idle: $conns logged-in connections, sokod RSS $rss0 -> $rss1 kB (peak $hwm): $idle_b B/conn" >&2
echo "# idle conns=$conns rss0_kb=$rss0 rss1_kb=$rss1 hwm_kb=$hwm bytes_per_conn=$idle_b" >>"$LOG"
sokod_stop "$I"

# ---- PostgreSQL ----------------------------------------------------------
pg_e2e=
pg_wire=
if [ "${BENCH_PG:-1}" != 0 ]; then
	if sh tests/pg.sh sh "$HERE/pos.sh" --pg-inner "$BUILD" "$W/pg.log"; then
		cat "$W/pg.log" >>"$LOG"
		cat "$W/pg.log.lines" >>"$LOG.lines"
		pg_e2e=$(field "$LOG" e2e_pg answered_per_s | median)
		pg_wire=$(field "$LOG" e2e_pg_wire answered_per_s | median)
	else
		die "PostgreSQL POS runs failed"
	fi
fi

# ---- rows ----------------------------------------------------------------
base=$(awk -F '\t' '$1 == "ledger.sqlite.uniform" { print $2 }' "$RESULTS")
base_pg=$(awk -F '\t' '$1 == "ledger.pg.uniform" { print $2 }' "$RESULTS")
e2e=$(field "$LOG" e2e_sqlite answered_per_s | median)
{
	printf 'pos.e2e.sqlite\t%s\tapproved/s\tledger.sqlite.uniform\t%s\n' \
		"$e2e" "$(ratio "$e2e" "${base:-nan}")"
	printf 'pos.e2e.sqlite.p50_ms\t%s\tms\t-\t-\n' \
		"$(field "$LOG" e2e_sqlite p50 | median)"
	printf 'pos.e2e.sqlite.p99_ms\t%s\tms\t-\t-\n' \
		"$(field "$LOG" e2e_sqlite p99 | median)"
	if [ -n "$tls_e2e" ]; then
		printf 'pos.e2e.sqlite.tls\t%s\tapproved/s\tpos.e2e.sqlite\t%s\n' \
			"$tls_e2e" "$(ratio "$tls_e2e" "$e2e")"
	fi
	if [ -n "$pg_e2e" ]; then
		printf 'pos.e2e.pg\t%s\tapproved/s\tledger.pg.uniform\t%s\n' \
			"$pg_e2e" "$(ratio "$pg_e2e" "${base_pg:-nan}")"
	fi
	wire_e2e=$(field "$LOG" e2e_wire answered_per_s | median)
	printf 'pos.e2e.sqlite.wire\t%s\tapproved/s\tledger.sqlite.uniform\t%s\n' \
		"$wire_e2e" "$(ratio "$wire_e2e" "${base:-nan}")"
	if [ -n "$pg_wire" ]; then
		printf 'pos.e2e.pg.wire\t%s\tapproved/s\tledger.pg.uniform\t%s\n' \
			"$pg_wire" "$(ratio "$pg_wire" "${base_pg:-nan}")"
	fi
	printf 'pos.p99_ms_at_25k\t%s\tms\t-\t-\n' \
		"$(field "$LOG" open_loop p99 | median)"
	printf 'pos.p99_ms_at_25k.wire\t%s\tms\t-\t-\n' \
		"$(field "$LOG" open_wire p99 | median)"
	printf 'pos.p50_ms_at_25k.wire\t%s\tms\t-\t-\n' \
		"$(field "$LOG" open_wire p50 | median)"
	printf 'pos.open_loop.wire.answered_per_s\t%s\tapproved/s\t-\t-\n' \
		"$(field "$LOG" open_wire answered_per_s | median)"
	printf 'pos.open_loop.answered_per_s\t%s\tapproved/s\t-\t-\n' \
		"$(field "$LOG" open_loop answered_per_s | median)"
	st=$(field "$LOG" status answered_per_s | median)
	if [ -n "$redis_gets" ]; then
		printf 'pos.status\t%s\treq/s\tredis.get\t%s\n' \
			"$st" "$(ratio "$st" "$redis_gets")"
		printf 'redis.get\t%s\treq/s\t-\t-\n' "$redis_gets"
	fi
	printf 'pos.replay.10k_s\t%s\ts\t-\t-\n' \
		"$(field "$LOG" replay_10k replay_s | median)"
	printf 'pos.replay.fleet_s\t%s\ts\t-\t-\n' \
		"$(field "$LOG" replay_fleet replay_s | median)"
	printf 'pos.idle_conn_bytes\t%s\tB/conn\t-\t-\n' "$idle_b"
	printf 'term.rss_kb\t%s\tkB\t-\t-\n' "$term_kb"
	printf 'term.anon_peak_kb\t%s\tkB\t-\t-\n' "$term_anon_kb"
	printf 'term.lib_heap_kb\t%s\tkB\t-\t-\n' "$term_lib_kb"
} >>"$RESULTS"
echo "== POS rows appended to $RESULTS (medians of $RUNS runs; every run in $LOG)" >&2

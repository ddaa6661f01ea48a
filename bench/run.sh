#!/bin/sh
# run.sh [BUILD] - the ledger benchmarks (docs/benchmarks.md), run by
# `make bench`.  Writes bench/results.tsv:
#
#   name<TAB>value<TAB>unit<TAB>baseline<TAB>ratio
#
# Each configuration runs BENCH_RUNS times (default 3) for BENCH_SECONDS
# (default 10) after BENCH_WARMUP seconds (default 2); the medians go into
# results.tsv, every run's full line into $BUILD/bench/ledger.log.  Runs of
# the three modes are interleaved so background noise hits them alike.
# SQLite runs on a fresh database file under $BUILD/bench (the real disk,
# never tmpfs); PostgreSQL runs against the throwaway server of
# tests/pg.sh (synchronous_commit=on, fsync=on), one database for all of
# its runs (each run uses its own accounts and keys).
#
# Environment: BENCH_RUNS, BENCH_SECONDS, BENCH_WARMUP, BENCH_OUTSTANDING
# (default 20000), BENCH_BATCH_MAX (default 10000, as sokod's dbq_batch_max),
# BENCH_ACCOUNTS (default 10000), BENCH_PG=0 to skip PostgreSQL (the
# results then say so: no row is invented).
#
# Internal: run.sh --pg-inner BUILD OUT runs the PostgreSQL runs; it is
# what tests/pg.sh executes.
set -eu

RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
OUTSTANDING=${BENCH_OUTSTANDING:-20000}
BATCH_MAX=${BENCH_BATCH_MAX:-10000}
ACCOUNTS=${BENCH_ACCOUNTS:-10000}
# per_commit: one payment per commit; 16 queued so the writer never waits
# for the loop thread (the ceiling of one commit stream)
PC_OUTSTANDING=16

die() {
	echo "bench/run.sh: $*" >&2
	exit 1
}

# one_run STORE MODE LOG: runs the harness once, appends its result line
# to LOG (it fails loudly on any wrong result or invariant violation)
one_run() {
	o=$OUTSTANDING
	[ "$2" = per_commit ] && o=$PC_OUTSTANDING
	b=$BATCH_MAX
	[ "$2" = per_commit ] && b=1
	echo "== $2 on ${1%%:*} (${SECS}s, outstanding $o, batch_max $b)" >&2
	line=$("$BIN" --store "$1" --mode "$2" --accounts "$ACCOUNTS" \
		--seconds "$SECS" --warmup "$WARMUP" --outstanding "$o" \
		--batch-max "$BATCH_MAX" 2>"$BDIR/last.err") || {
		cat "$BDIR/last.err" >&2
		die "ledger_bench failed: $2 on ${1%%:*}"
	}
	grep -v '^  [0-9]* s: ' "$BDIR/last.err" >&2 || true
	echo "$line" >>"$3"
}

# field LOG MODE KEY: the values of KEY=... in LOG's lines for MODE
field() {
	grep "mode=$2 " "$1" | tr ' ' '\n' | sed -n "s/^$3=//p"
}

# median: of the numbers on stdin
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

med() {
	field "$1" "$2" "$3" | median
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (b + 0 == 0) print "nan"; else printf "%.2f\n", a / b }'
}

if [ "${1:-}" = "--pg-inner" ]; then
	BUILD=$2
	BIN=$BUILD/bench/ledger_bench
	BDIR=$BUILD/bench
	[ -n "${SOKO_TEST_PG:-}" ] || die "--pg-inner needs SOKO_TEST_PG"
	: >"$3"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		for m in per_commit uniform hot; do
			one_run "pg:$SOKO_TEST_PG" "$m" "$3"
		done
		i=$((i + 1))
	done
	exit 0
fi

BUILD=${1:-build}
BIN=$BUILD/bench/ledger_bench
FSYNC=$BUILD/bench/fsync_rate
BDIR=$BUILD/bench
[ -x "$BIN" ] || die "$BIN missing (make bench builds it)"
[ -x "$FSYNC" ] || die "$FSYNC missing (make bench builds it)"
mkdir -p "$BDIR"
TMP=$(mktemp -d "$BDIR/tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fstype=$(stat -f -c %T "$TMP")
case $fstype in
tmpfs | ramfs) die "$TMP is on $fstype: the benchmark needs the real disk" ;;
esac
LOG=$BDIR/ledger.log
SQ_LOG=$TMP/sqlite.log
PG_LOG=$TMP/pg.log
: >"$SQ_LOG"
{
	echo "# ledger_bench $(date -u +%Y-%m-%dT%H:%M:%SZ) runs=$RUNS" \
		"seconds=$SECS warmup=$WARMUP outstanding=$OUTSTANDING" \
		"batch_max=$BATCH_MAX accounts=$ACCOUNTS fs=$fstype"
	echo "# $(nproc) cpus, $(uname -sr)"
} >"$LOG"

echo "== fsync rate on $TMP ($fstype)" >&2
fs=$("$FSYNC" "$TMP" 3) || die "fsync_rate failed"
echo "$fs" >>"$LOG"
echo "$fs" >&2
fsync_s=$(echo "$fs" | tr ' ' '\n' | sed -n 's/^overwrite_fdatasync_per_s=//p')
fsync_app=$(echo "$fs" | tr ' ' '\n' | sed -n 's/^append_fdatasync_per_s=//p')

i=0
while [ "$i" -lt "$RUNS" ]; do
	for m in per_commit uniform hot; do
		db=$TMP/ledger-$m-$i.db
		one_run "sqlite:$db" "$m" "$SQ_LOG"
		rm -f "$db" "$db-wal" "$db-shm"
	done
	i=$((i + 1))
done
sed 's/^/sqlite /' "$SQ_LOG" >>"$LOG"

pg_ok=0
if [ "${BENCH_PG:-1}" != 0 ]; then
	# memory sizing as in docs/operations.md; durability stays on
	if SOKO_PG_OPTS="${SOKO_PG_OPTS:--c shared_buffers=1GB -c max_wal_size=4GB -c wal_buffers=64MB}" \
		sh tests/pg.sh sh "$0" --pg-inner "$BUILD" "$PG_LOG"; then
		pg_ok=1
		sed 's/^/pg /' "$PG_LOG" >>"$LOG"
	else
		die "PostgreSQL runs failed (tests/pg.sh, store_pg.c)"
	fi
fi

OUT=bench/results.tsv
{
	printf 'name\tvalue\tunit\tbaseline\tratio\n'
	printf 'machine.fsync_per_s\t%s\tops/s\t-\t-\n' "$fsync_s"
	printf 'machine.fsync_append_per_s\t%s\tops/s\t-\t-\n' "$fsync_app"
	pc=$(med "$SQ_LOG" per_commit payments_per_s)
	un=$(med "$SQ_LOG" uniform payments_per_s)
	hot=$(med "$SQ_LOG" hot payments_per_s)
	printf 'ledger.sqlite.per_commit\t%s\tpayments/s\t-\t-\n' "$pc"
	printf 'ledger.sqlite.uniform\t%s\tpayments/s\tledger.sqlite.per_commit\t%s\n' \
		"$un" "$(ratio "$un" "$pc")"
	printf 'ledger.sqlite.hot\t%s\tpayments/s\tledger.sqlite.per_commit\t%s\n' \
		"$hot" "$(ratio "$hot" "$pc")"
	printf 'ledger.sqlite.hot_ratio\t%s\tratio\tledger.sqlite.uniform\t%s\n' \
		"$(ratio "$hot" "$un")" "$(ratio "$hot" "$un")"
	printf 'ledger.sqlite.p99_ms\t%s\tms\t-\t-\n' \
		"$(med "$SQ_LOG" uniform p99_ms)"
	printf 'ledger.sqlite.commits_per_s\t%s\tcommits/s\t-\t-\n' \
		"$(med "$SQ_LOG" uniform commits_per_s)"
	printf 'ledger.sqlite.avg_batch\t%s\tpayments/commit\t-\t-\n' \
		"$(med "$SQ_LOG" uniform avg_batch)"
	if [ "$pg_ok" = 1 ]; then
		pc=$(med "$PG_LOG" per_commit payments_per_s)
		un=$(med "$PG_LOG" uniform payments_per_s)
		hot=$(med "$PG_LOG" hot payments_per_s)
		printf 'ledger.pg.per_commit\t%s\tpayments/s\t-\t-\n' "$pc"
		printf 'ledger.pg.uniform\t%s\tpayments/s\tledger.pg.per_commit\t%s\n' \
			"$un" "$(ratio "$un" "$pc")"
		printf 'ledger.pg.hot\t%s\tpayments/s\tledger.pg.per_commit\t%s\n' \
			"$hot" "$(ratio "$hot" "$pc")"
		printf 'ledger.pg.hot_ratio\t%s\tratio\tledger.pg.uniform\t%s\n' \
			"$(ratio "$hot" "$un")" "$(ratio "$hot" "$un")"
		printf 'ledger.pg.p99_ms\t%s\tms\t-\t-\n' \
			"$(med "$PG_LOG" uniform p99_ms)"
		printf 'ledger.pg.commits_per_s\t%s\tcommits/s\t-\t-\n' \
			"$(med "$PG_LOG" uniform commits_per_s)"
		printf 'ledger.pg.avg_batch\t%s\tpayments/commit\t-\t-\n' \
			"$(med "$PG_LOG" uniform avg_batch)"
	fi
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
sh bench/pos.sh "$BUILD" "$OUT" || die "POS benchmarks failed (bench/pos.sh)"
sh bench/provider.sh "$OUT" "$BUILD" || die "bench/provider.sh failed"
echo "== $OUT (medians of $RUNS runs; every run in $LOG)" >&2
cat "$OUT"

#!/bin/sh
# provider.sh RESULTS [BUILD] - the outbound provider-call benchmark
# (docs/benchmarks.md "Provider calls"), run by bench/run.sh.  Appends to
# RESULTS (bench/run.sh's format, header written if the file is new):
#
#   provider.calls.trivial   calls/s against the trivial evhttp HTTPS peer
#   provider.calls           calls/s against soko-sandbox (MoMo status GET),
#                            baseline provider.calls.trivial, ratio; only
#                            when $BUILD/soko-sandbox exists: otherwise no
#                            row (it says so on stderr and in the log)
#   provider.cpu_us_per_call client CPU per call (trivial peer): 1e6 / this
#                            is the rate of one fully used client core
#   provider.raw_p99_ms      the same, one call at a time, by a bare blocking
#                            OpenSSL client (the floor: loopback, TLS, peer)
#   provider.client_p99_ms   client-added latency p99 through ncurl, one call
#                            at a time (elapsed - the peer's own handling
#                            time), baseline provider.raw_p99_ms, ratio
#   provider.conn_kb         client RSS per pooled TLS connection
#
# Medians of BENCH_RUNS runs (default 3) of BENCH_SECONDS (default 10) after
# BENCH_WARMUP (default 2); runs against the two peers are interleaved.
# Every run's line goes to $BUILD/bench/provider.log.  The client is pinned
# to CPU 0 and the peer to CPU 1 when taskset exists and there are 2 CPUs.
# Environment: PROVIDER_OUTSTANDING (32), PROVIDER_CONNS (32),
# PROVIDER_LATENCY_SECONDS (3), SANDBOX_ARGS (extra soko-sandbox arguments),
# SANDBOX_PATH (default: the status of the request-to-pay made at start),
# SANDBOX_MOMO_USER, SANDBOX_MOMO_API_KEY, SANDBOX_MOMO_COLLECTION_KEY (the
# sandbox's documented defaults), PYTHON (python3, for that setup).
set -eu

OUT=${1:?usage: provider.sh RESULTS [BUILD]}
BUILD=${2:-build}
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
K=${PROVIDER_OUTSTANDING:-32}
CONNS=${PROVIDER_CONNS:-32}
LSECS=${PROVIDER_LATENCY_SECONDS:-3}
BIN=$BUILD/bench/provider_bench
SANDBOX=$BUILD/soko-sandbox

die() {
	echo "bench/provider.sh: $*" >&2
	exit 1
}

[ -x "$BIN" ] || die "$BIN missing (make bench builds it)"
BDIR=$BUILD/bench
mkdir -p "$BDIR"
TMP=$(mktemp -d "$BDIR/prov.XXXXXX")
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

CLIENT_PIN="" PEER_PIN=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	CLIENT_PIN="taskset -c 0"
	PEER_PIN="taskset -c 1"
fi

# start_peer NAME READY_PATTERN CMD...: starts CMD in the background, waits
# (10 s at most) for its readiness line and puts it in $line (not run in
# $(...): the pid must reach PIDS, which the EXIT trap kills)
start_peer() {
	name=$1 pat=$2
	shift 2
	$PEER_PIN "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	PIDS="$PIDS $!"
	i=0
	while [ $i -lt 100 ]; do
		line=$(grep -m1 "$pat" "$TMP/$name.out" 2>/dev/null || true)
		if [ -n "$line" ]; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	cat "$TMP/$name.err" >&2
	return 1
}

port_of() {
	echo "$1" | sed -n 's/.*https=127\.0\.0\.1:\([0-9]*\).*/\1/p'
}

LOG=$BDIR/provider.log
{
	echo "# provider_bench $(date -u +%Y-%m-%dT%H:%M:%SZ) runs=$RUNS" \
		"seconds=$SECS warmup=$WARMUP outstanding=$K conns=$CONNS" \
		"latency_seconds=$LSECS pin=${CLIENT_PIN:-none}"
	echo "# $(nproc) cpus, $(uname -sr), load: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$LOG"

mkdir -p "$TMP/trivial"
start_peer trivial "ready https=" "$BIN" --serve-trivial \
	--tls-dir "$TMP/trivial" || die "the trivial peer did not start"
T_URL="https://127.0.0.1:$(port_of "$line")/collection/v1_0/requesttopay/x"
T_CA=$TMP/trivial/ca.pem

# sb_setup PORT CA: a MoMo collection token and one request-to-pay, made
# the way an adapter would (tests/sandbox/README.md; the sandbox's
# documented default credentials, overridable); prints "TOKEN REFERENCE"
sb_setup() {
	SB_PORT=$1 SB_CA=$2 "${PYTHON:-python3}" - <<'PY'
import base64, json, os, ssl, urllib.request, uuid
base = "https://127.0.0.1:%s" % os.environ["SB_PORT"]
ctx = ssl.create_default_context(cafile=os.environ["SB_CA"])
user = os.environ.get("SANDBOX_MOMO_USER",
                      "f4d5b7a0-5c1e-4b8e-9d3a-2b6c8e1f0a91")
key = os.environ.get("SANDBOX_MOMO_API_KEY",
                     "1e89774dabd944b4b112c30aaef5b9c8")
coll = os.environ.get("SANDBOX_MOMO_COLLECTION_KEY",
                      "a3c9e1f2b4d64e7f8a9b0c1d2e3f4a5b")
def req(method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(base + path, data=data, method=method,
                               headers=headers or {})
    if data is not None:
        r.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(r, context=ctx, timeout=10) as f:
        return f.status, f.read()
basic = base64.b64encode(("%s:%s" % (user, key)).encode()).decode()
st, b = req("POST", "/collection/token/",
            headers={"Authorization": "Basic " + basic,
                     "Ocp-Apim-Subscription-Key": coll})
tok = json.loads(b)["access_token"]
ref = str(uuid.uuid4())
st, _ = req("POST", "/collection/v1_0/requesttopay",
            {"amount": "100", "currency": "EUR", "externalId": "bench",
             "payer": {"partyIdType": "MSISDN", "partyId": "46733123459"},
             "payerMessage": "bench", "payeeNote": "bench"},
            headers={"Authorization": "Bearer " + tok,
                     "X-Target-Environment": "sandbox",
                     "Ocp-Apim-Subscription-Key": coll,
                     "X-Reference-Id": ref})
assert st == 202, st
print(tok, ref)
PY
}

have_sb=0
if [ -x "$SANDBOX" ]; then
	mkdir -p "$TMP/sb"
	# shellcheck disable=SC2086
	if start_peer sandbox "soko-sandbox ready https=" "$SANDBOX" \
		--listen 127.0.0.1:0 --ctl 127.0.0.1:0 --tls-dir "$TMP/sb" \
		--quiet ${SANDBOX_ARGS:-} &&
		S_PORT=$(port_of "$line") &&
		setup=$(sb_setup "$S_PORT" "$TMP/sb/ca.pem" 2>"$TMP/sb_setup.err"); then
		have_sb=1
		S_TOKEN=${setup% *}
		S_URL="https://127.0.0.1:$S_PORT${SANDBOX_PATH:-/collection/v1_0/requesttopay/${setup#* }}"
		S_CA=$TMP/sb/ca.pem
		echo "bench/provider.sh: soko-sandbox on port $S_PORT: MoMo" \
			"status GETs of one request-to-pay" | tee -a "$LOG" >&2
	else
		cat "$TMP/sb_setup.err" >&2 2>/dev/null || true
		echo "bench/provider.sh: $SANDBOX did not start or refused the" \
			"MoMo setup: no provider.calls row" | tee -a "$LOG" >&2
	fi
else
	echo "bench/provider.sh: $SANDBOX not built (soko-sandbox is not" \
		"merged yet): no provider.calls row; the trivial peer only" |
		tee -a "$LOG" >&2
fi

# one_run PEER URL CA TOKEN SUBSCRIPTION_KEY: one client run, its line
# appended to $TMP/PEER.log
one_run() {
	echo "== provider calls against $1 (${SECS}s, outstanding $K," \
		"conns $CONNS)" >&2
	l=$($CLIENT_PIN "$BIN" --url "$2" --ca "$3" --outstanding "$K" \
		--conns "$CONNS" --seconds "$SECS" --warmup "$WARMUP" \
		--latency-seconds "$LSECS" \
		--header "Authorization: Bearer $4" \
		--header "X-Target-Environment: sandbox" \
		--header "Ocp-Apim-Subscription-Key: $5" \
		2>"$TMP/last.err") || {
		cat "$TMP/last.err" >&2
		return 1
	}
	echo "$l" >&2
	echo "$l" >>"$TMP/$1.log"
	echo "$1 $l" >>"$LOG"
}

i=0
: >"$TMP/trivial.log"
: >"$TMP/sandbox.log"
while [ "$i" -lt "$RUNS" ]; do
	one_run trivial "$T_URL" "$T_CA" provider-bench provider-bench ||
		die "the run against the trivial peer failed"
	if [ "$have_sb" = 1 ] && ! one_run sandbox "$S_URL" "$S_CA" \
		"$S_TOKEN" "${SANDBOX_MOMO_COLLECTION_KEY:-a3c9e1f2b4d64e7f8a9b0c1d2e3f4a5b}"; then
		echo "bench/provider.sh: a run against soko-sandbox failed" \
			"(not every call answered 2xx): no provider.calls row" |
			tee -a "$LOG" >&2
		have_sb=0
	fi
	i=$((i + 1))
done

# med LOG KEY: the median of KEY=... over LOG's lines
med() {
	tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "nan"; exit }
			if (NR % 2) print v[(NR + 1) / 2];
			else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (b + 0 == 0) print "nan"; else printf "%.2f\n", a / b }'
}

[ -s "$OUT" ] || printf 'name\tvalue\tunit\tbaseline\tratio\n' >"$OUT"
tc=$(med "$TMP/trivial.log" calls_per_s)
{
	printf 'provider.calls.trivial\t%s\tcalls/s\t-\t-\n' "$tc"
	if [ "$have_sb" = 1 ]; then
		sc=$(med "$TMP/sandbox.log" calls_per_s)
		printf 'provider.calls\t%s\tcalls/s\tprovider.calls.trivial\t%s\n' \
			"$sc" "$(ratio "$sc" "$tc")"
	fi
	printf 'provider.cpu_us_per_call\t%s\tus\t-\t-\n' \
		"$(med "$TMP/trivial.log" cpu_us_per_call)"
	rp=$(med "$TMP/trivial.log" raw_p99_ms)
	cp=$(med "$TMP/trivial.log" client_p99_ms)
	printf 'provider.raw_p99_ms\t%s\tms\t-\t-\n' "$rp"
	printf 'provider.client_p99_ms\t%s\tms\tprovider.raw_p99_ms\t%s\n' \
		"$cp" "$(ratio "$cp" "$rp")"
	printf 'provider.conn_kb\t%s\tKB\t-\t-\n' \
		"$(med "$TMP/trivial.log" conn_kb)"
} >>"$OUT"
echo "== provider rows appended to $OUT (medians of $RUNS runs; every run in $LOG)" >&2

#!/bin/sh
# deps.sh - install the Debian 12 packages soko needs to build, run and test.
#
# As root: installs whatever is missing (apt-get).  As another user: prints
# the exact apt-get line to run and fails if anything is missing.
# Usage: scripts/deps.sh [build|test|bench]   (test adds the test-only
# tools; bench adds those and redis, the baseline of pos.status)
set -eu

build_pkgs="build-essential pkg-config libevent-dev libsqlite3-dev libpq-dev
libssl-dev libcurl4-openssl-dev libjansson-dev sqlite3 python3 ca-certificates"
test_pkgs="clang libclang-rt-14-dev postgresql procps openssl"
# make bench: redis-benchmark GET is the baseline of pos.status
bench_pkgs="redis-server redis-tools"

want=$build_pkgs
[ "${1:-build}" = test ] && want="$build_pkgs $test_pkgs"
[ "${1:-build}" = bench ] && want="$build_pkgs $test_pkgs $bench_pkgs"

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run as root:  apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# The throwaway PostgreSQL of the tests needs only the binaries: never let
# the package create and start a system cluster.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/soko-no-main.conf
echo "deps: installing:$missing" >&2
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null

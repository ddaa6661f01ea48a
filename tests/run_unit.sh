#!/bin/sh
# run_unit.sh BIN... - runs each unit-test binary, then prints the total as
# "unit: N passed, N failed" and fails if any binary failed.
pass=0 fail=0 rc=0
for t in "$@"; do
	out=$("$t" 2>&1); r=$?
	printf '%s\n' "$out" | grep -v '^ok ' || true
	line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
	p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	[ -n "$p" ] || { p=0; f=1; echo "$t: no result line (crashed?)"; }
	[ $r -eq 0 ] || { rc=1; [ "$f" -gt 0 ] || f=1; }
	pass=$((pass + p)); fail=$((fail + f))
done
echo "unit: $pass passed, $fail failed"
exit $rc

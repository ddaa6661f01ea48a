#!/usr/bin/env python3
"""config_doc.py SOKOD DOC [--check] - the keys table of
docs/configuration.md, made from `sokod --help-config` (config.def is the
one source).  Rewrites the table in DOC; with --check, exits 1 when DOC
differs (make test runs the check, so the doc cannot drift)."""
import subprocess
import sys


def table(sokod):
    out = subprocess.run([sokod, "--help-config"], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    rows = ["| key | type and range | default | meaning |", "|---|---|---|---|"]
    for i in range(0, len(out) - 1, 2):
        key, default = out[i].split(" = ", 1)
        kind, meaning = out[i + 1].strip().split(". ", 1)
        if kind == "bool":
            kind = "boolean"
        rows.append("| `%s` | %s | `%s` | %s |" % (key, kind, default,
                                                   meaning))
    return rows


def main():
    sokod, doc = sys.argv[1], sys.argv[2]
    check = "--check" in sys.argv[3:]
    with open(doc) as f:
        lines = f.read().split("\n")
    start = lines.index("| key | type and range | default | meaning |")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    new = lines[:start] + table(sokod) + lines[end:]
    if check:
        if new != lines:
            print("%s: the keys table differs from sokod --help-config; "
                  "run: python3 scripts/config_doc.py %s %s" %
                  (doc, sokod, doc), file=sys.stderr)
            sys.exit(1)
        return
    with open(doc, "w") as f:
        f.write("\n".join(new))


if __name__ == "__main__":
    main()

"""run.py - runs the integration suites against a build directory.

    python3 tests/integration/run.py --build build [--only NAME]

Prints one line per test and ends with "integration: N passed, N failed".
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Suite, cleanup  # noqa: E402
import test_http  # noqa: E402
import test_crash  # noqa: E402
import test_pos  # noqa: E402
import test_fleet  # noqa: E402
import test_fleet_crash  # noqa: E402
import test_providers  # noqa: E402
import test_pos_kill  # noqa: E402
import test_bills  # noqa: E402
import test_disbursements  # noqa: E402
import test_c2b  # noqa: E402
import test_prov_more  # noqa: E402
import test_pos_tls  # noqa: E402
import test_recon  # noqa: E402
import test_reversal  # noqa: E402
import test_pos_prov  # noqa: E402
import test_fleet_mix  # noqa: E402
import test_rpc  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", default=None,
                    help="run tests whose name contains one of these "
                         "comma-separated words")
    ap.add_argument("--store", default="sqlite", choices=["sqlite", "pg"],
                    help="pg: run sokod on the PostgreSQL of tests/pg.sh")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    if a.store == "pg":
        os.environ["SOKO_IT_STORE"] = "pg"
    suite = Suite("integration" if a.store == "sqlite" else
                  "integration_pg")
    for fn in (test_http.TESTS + test_crash.TESTS + test_pos.TESTS +
               test_fleet.TESTS + test_fleet_crash.TESTS +
               test_pos_kill.TESTS + test_pos_tls.TESTS +
               test_providers.TESTS + test_bills.TESTS +
               test_disbursements.TESTS + test_c2b.TESTS +
               test_prov_more.TESTS + test_recon.TESTS +
               test_reversal.TESTS +
               test_pos_prov.TESTS + test_fleet_mix.TESTS +
               test_rpc.TESTS):
        if a.only and not any(w in fn.__name__ for w in a.only.split(",")):
            continue
        suite.run(fn, build)
    ok = suite.report()
    if ok:
        cleanup()
    else:
        print("integration: work directories kept under %s" %
              os.environ.get("TMPDIR", "/tmp"), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

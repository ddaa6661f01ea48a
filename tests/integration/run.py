"""run.py - runs the integration suites against a build directory.

    python3 tests/integration/run.py --build build [--only NAME]

Prints one line per test and ends with "integration: N passed, N failed".
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Suite  # noqa: E402
import test_http  # noqa: E402
import test_crash  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    suite = Suite("integration")
    for fn in test_http.TESTS + test_crash.TESTS:
        if a.only and a.only not in fn.__name__:
            continue
        suite.run(fn, build)
    sys.exit(0 if suite.report() else 1)


if __name__ == "__main__":
    main()

"""test_fleet_crash.py - kill -9 sokod many times under a POS fleet
(issue #3, "Bad input and faults").

sokod listens on fixed ports chosen here (http and pos), so the fleet
finds it again after every restart.  50 terminals of `soko-pos fleet`
do float transfers closed loop between their agents for DURATION_S while
the test kills sokod with SIGKILL >= 50 times at random moments and
restarts it (the readiness line says when it is up).  The terminals
reconnect (libsokoterm's back-off capped by --max-reconnect-ms), resolve
every lost answer by STATUS and replay their queues.  soko-pos must end
with `check ok`: every APPROVED transfer present exactly once (STATUS
gives the same code and ref), every agent float moved by exactly the
approved amounts (nothing lost, nothing doubled), nothing unresolved,
every queue drained; then `sokoctl verify` is clean.

The same run against build/sokod-canary with
SOKO_FAULT=skip_duplicate_check (svc_pos.c: the duplicate check forgets
what an earlier process decided, so a transfer whose answer was lost in a
kill is committed again when the terminal resends it) must FAIL: a crash
test that cannot fail proves nothing.  The last restart of that run is
the correct sokod: the checker does not trust the server under test.

SOKO_FLEET_CRASH_SCALE (default 1; e.g. 2 under ASan) stretches the run
length and the spacing of the kills, never their number (>= 50), the
number of terminals (50) or the transfers (>= 2,000, asserted).
"""
import os
import random
import socket
import subprocess
import time

from harness import SAN_MARKERS
from test_fleet import FleetSokod, kv

N_TERMS = 50
N_KILLS = 50
MIN_TXNS = 2000
SCALE = float(os.environ.get("SOKO_FLEET_CRASH_SCALE", "1"))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FixedSokod(FleetSokod):
    """FleetSokod on fixed http and pos ports (both listeners use
    SO_REUSEADDR: LEV_OPT_REUSEABLE, so a restart binds at once)."""

    def __init__(self, build, binary="sokod", env=None):
        super().__init__(build)
        self.binary = os.path.join(build, binary)
        self.env.update(env or {})
        self.http_port, self.fixed_pos = free_port(), free_port()
        self.extra = [x for x in self.extra if not x.startswith("pos_listen")
                      and x != "-o"]
        extra = ["-o", "http_listen=127.0.0.1:%d" % self.http_port,
                 "-o", "pos_listen=127.0.0.1:%d" % self.fixed_pos]
        for x in self.extra:
            extra += ["-o", x]
        self.extra = extra

    def start(self, timeout=20):
        for _ in range(100):  # a port can be TIME_WAIT-free but not yet
            try:
                super().start(timeout)
                break
            except AssertionError as e:
                if "ddress already in use" not in str(e):
                    raise
                time.sleep(0.05)
        assert self.port == self.http_port and \
            self.pos_port == self.fixed_pos, (self.port, self.pos_port)
        return self


def fleet_crash_run(build, binary="sokod", env=None, seed=1):
    """Returns (soko-pos exit status, its report dict, its stdout,
    sokoctl verify result, figures)."""
    s = FixedSokod(build, binary=binary, env=env)
    rnd = random.Random(seed)
    duration = 30.0 * SCALE
    try:
        prov = s.provision(N_TERMS)
        s.start()
        for i in range(1, N_TERMS + 1):
            st, _, data = s.move("fund-crash-%d" % i, {
                "type": "float_topup", "currency": "KES",
                "amount": "1000.00", "debit": "clearing:fleet",
                "credit": "agent:A%04d:float" % i})
            assert st == 201, data
        out_path = os.path.join(s.dir, "soko-pos.out")
        err_path = os.path.join(s.dir, "soko-pos.err")
        t0 = time.time()
        with open(out_path, "w") as out, open(err_path, "w") as err:
            pos = subprocess.Popen(
                [os.path.join(build, "soko-pos"), "fleet",
                 "--server", "127.0.0.1:%d" % s.fixed_pos,
                 "--provision", prov, "--terminals", str(N_TERMS),
                 "--queue-dir", s.qdir, "--duration", "%.1f" % duration,
                 "--closed-loop", "2", "--mix", "float_transfer=100",
                 "--amount", "1.00", "--currency", "KES",
                 "--http", "127.0.0.1:%d" % s.http_port,
                 "--admin-key-file", s.keyfile, "--max-reconnect-ms", "50",
                 "--drain", "40", "--seed", str(seed), "--eod"],
                stdout=out, stderr=err)
            # kills spread over the run, the first after 1 s, the last
            # >= 2 s before its end; each at a random moment
            span = (duration - 3.0 * SCALE) / N_KILLS
            kills = 0
            next_kill = t0 + 1.0 * SCALE
            for k in range(N_KILLS):
                next_kill += span * rnd.uniform(0.5, 1.0)
                while time.time() < next_kill:
                    time.sleep(0.005)
                if pos.poll() is not None:
                    break
                s.kill9()
                kills += 1
                if k == N_KILLS - 1:
                    # the last restart: always the correct sokod
                    s.binary = os.path.join(build, "sokod")
                    s.env.pop("SOKO_FAULT", None)
                s.start()
                next_kill = max(next_kill, time.time())
            pos.wait(timeout=duration + 90)
        took = time.time() - t0
        with open(out_path) as f:
            stdout = f.read()
        with open(err_path) as f:
            stderr = f.read()
        for m in SAN_MARKERS:
            assert m not in stderr, "sanitizer report in soko-pos:\n" + \
                stderr[-4000:]
        rep = {}
        for ln in stdout.splitlines():
            if ln.startswith("problem") or ln.startswith("check failed"):
                continue
            rep.update(kv("x " + ln))
        s.stop()
        verify = s.ctl("verify", check=False)
        figures = ("kills=%d transfers=%s approved=%s lost_answers=%s "
                   "resolved_late=%s reconnects=%s duration_s=%.1f" %
                   (kills, rep.get("completed"), rep.get("APPROVED"),
                    rep.get("delayed"), rep.get("resolved_late"),
                    rep.get("reconnects"), took))
        print("  fleet_crash %s: %s" % (binary, figures), flush=True)
        return pos.returncode, rep, stdout, verify, kills
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
        s.cleanup_queues()


def t_fleet_crash_kill9(build):
    rc, rep, out, verify, kills = fleet_crash_run(build)
    print("    " + out.strip().replace("\n", "\n    "), flush=True)
    assert kills >= N_KILLS, "only %d kills: soko-pos ended early" % kills
    assert rc == 0 and "check ok" in out.splitlines(), out
    assert int(rep["completed"]) >= MIN_TXNS, out
    assert int(rep["offered"]) == int(rep["completed"]), out
    assert rep["queue_left"] == "0" and rep["held"] == "0", out
    # every terminal's batch close: its totals (from its queue) equal
    # the server's (from the ledger), after 50 kills
    assert rep["eod_ok"] == str(N_TERMS), out
    # the kills did hit transfers in flight: lost answers were resolved
    assert int(rep["delayed"]) > 0 and int(rep["resolved_late"]) > 0, out
    assert verify.returncode == 0, verify.stdout + verify.stderr


def t_fleet_crash_canary_fails(build):
    """The same run against a server whose duplicate check forgets what
    an earlier process decided must find doubled transfers."""
    rc, rep, out, verify, kills = fleet_crash_run(
        build, binary="sokod-canary",
        env={"SOKO_FAULT": "skip_duplicate_check"})
    problems = [ln for ln in out.splitlines() if ln.startswith("problem")]
    assert kills >= N_KILLS, "only %d kills" % kills
    assert int(rep.get("resolved_late", "0")) > 0, out
    assert rc != 0 and any(ln.startswith("check failed")
                           for ln in out.splitlines()), \
        "the fleet crash test did not detect skip_duplicate_check:\n" + out
    # doubled transfers: a float moved by more than the approved amounts,
    # or STATUS names another ledger transaction than the answer did
    assert any("float_moved" in p or "status_mismatch" in p
               for p in problems), out
    print("  canary detected: %d problems, e.g. %s" %
          (len(problems), problems[0]), flush=True)


TESTS = [t_fleet_crash_kill9, t_fleet_crash_canary_fails]

"""test_pos_kill.py - kill -9 the terminals themselves (soko-pos) and
sokod during a fleet run (issue #3, "Bad input and faults": 0 lost stored
or acknowledged transactions; the test must fail against a terminal built
to send before storing).

test_fleet_crash.py kills only sokod: the terminals never die, so a
terminal that sends a transaction before writing it to its queue would
pass it.  Here the soko-pos process (50 terminals, closed loop, queue
files in one directory) is killed with SIGKILL at random moments
N_POS_KILLS times and started again on the same queue directory, as a
terminal is switched on again after a power cut; sokod is killed and
restarted N_SOKOD_KILLS times meanwhile.  The last soko-pos runs to its
end: it drains every queue (the earlier processes' unanswered entries
are resolved by STATUS after login) and its own check must pass.

Then the end-of-run check, against the server's database (after a clean
stop) and every terminal's queue file:
- every queue file passes PRAGMA integrity_check and holds no open entry
  (drained);
- every transaction a queue recorded as APPROVED is in the ledger exactly
  once (idempotency key pos:<txn id>:<terminal>) and has its POS row;
  a declined one moved nothing;
- the server moved money for no transaction that no terminal queue knows
  ("server_only": the terminal sent it but has no record of it);
- every agent float equals its funding plus the approved transfers in
  and out that the queues recorded, and `sokoctl verify` is clean.

A queue row exists for every STORED event (libsokoterm fires STORED only
after the row's commit; tests/unit/terminal/test_queue_crash.c proves the
row survives the process being killed at any instant), so "every queue
row" covers "every transaction the terminal reported stored or approved".

The same run with build/soko-pos-canary and
SOKOTERM_FAULT=send_before_store (terminal/sokoterm.c, SOKOTERM_FAULTS
builds only: the request leaves before its row is written) must FAIL
with server_only transactions: a terminal killed between the send and
the store has moved money it cannot account for.  The last soko-pos of
that run is the correct one: the checker does not trust the terminal
under test.

Runs on SQLite only (the check reads soko.db).  SOKO_FLEET_CRASH_SCALE
stretches the segment lengths (slow builds), never the counts.
"""
import os
import random
import signal
import sqlite3
import subprocess
import time

from harness import SAN_MARKERS
from test_fleet import kv
from test_fleet_crash import FixedSokod

N_TERMS = 50
N_POS_KILLS = 6
N_SOKOD_KILLS = 12
MIN_TXNS = 2000
FUND_MINOR = 100000  # 1000.00 KES per agent
AMOUNT_MINOR = 100   # 1.00 KES per transfer
SCALE = float(os.environ.get("SOKO_FLEET_CRASH_SCALE", "1"))
Q_DONE = 9           # terminal/queue.h SOKOTERM_Q_DONE
CODE_APPROVED = 0


def queue_rows(qdir):
    """{(terminal, txn hex): (state, code, amount)} of every queue file,
    and the names of files that fail PRAGMA integrity_check.  Opened
    read-only: this reader changes nothing in a crashed file."""
    rows, bad = {}, []
    for name in sorted(os.listdir(qdir)):
        if not name.endswith(".db"):
            continue
        term = name[:-3]
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(qdir, name),
                             uri=True, timeout=10)
        try:
            if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                bad.append(name)
            for txn, state, code, amount in db.execute(
                    "SELECT txn_id, state, code, amount FROM q"):
                rows[(term, txn.hex())] = (state, code, amount)
        finally:
            db.close()
    return rows, bad


def server_view(db_path):
    """The server's POS transactions: {(terminal, txn hex): (rc, amount,
    counterparty)}, the number of ledger transactions per POS key, and
    every agent float balance {agent: minor}."""
    db = sqlite3.connect(db_path)
    try:
        pos = {}
        for term, txn, rc, amount, cp in db.execute(
                "SELECT terminal_id, txn_id, rc, amount_minor, counterparty"
                " FROM pos_txns WHERE type <> 0"):
            pos[(term, txn.hex())] = (rc, amount, cp)
        ledger = {}
        for (key,) in db.execute(
                "SELECT idem_key FROM txns WHERE idem_key LIKE 'pos:%'"):
            parts = key.split(":")
            if len(parts) > 3 and parts[3] == "rev":
                continue
            k = (parts[2], parts[1])  # "pos:<txn hex>:<terminal>"
            ledger[k] = ledger.get(k, 0) + 1
        floats = {}
        for code, bal in db.execute(
                "SELECT code, balance_minor FROM accounts"
                " WHERE code LIKE 'agent:%:float'"):
            floats[code.split(":")[1]] = bal
        return pos, ledger, floats
    finally:
        db.close()


def end_check(qrows, pos, ledger, floats):
    """Problems found comparing the terminals' queues with the server."""
    problems = []
    want = {"A%04d" % i: FUND_MINOR for i in range(1, N_TERMS + 1)}
    n_lost = n_dup = n_moved = n_only = 0
    for (term, txn), (state, code, amount) in qrows.items():
        n = ledger.get((term, txn), 0)
        if state != Q_DONE:
            continue  # reported as not drained
        if code == CODE_APPROVED:
            if n == 0 or (term, txn) not in pos:
                n_lost += 1
                if n_lost <= 5:
                    problems.append("lost terminal=%s txn=%s" % (term, txn))
                continue
            if n > 1:
                n_dup += 1
                if n_dup <= 5:
                    problems.append("duplicate terminal=%s txn=%s n=%d" %
                                    (term, txn, n))
            to = pos[(term, txn)][2]
            frm = "A" + term[1:]
            want[frm] = want.get(frm, 0) - amount
            want[to] = want.get(to, 0) + amount
        elif n > 0:
            n_moved += 1
            if n_moved <= 5:
                problems.append("declined_but_moved terminal=%s txn=%s "
                                "code=%s" % (term, txn, code))
    for key in set(ledger) | set(pos):
        if key not in qrows:
            n_only += 1
            if n_only <= 5:
                problems.append("server_only terminal=%s txn=%s rc=%s" %
                                (key[0], key[1],
                                 pos.get(key, ("?",))[0]))
    for agent, bal in sorted(floats.items()):
        if agent in want and want[agent] != bal:
            problems.append("float agent=%s want=%d got=%d" %
                            (agent, want[agent], bal))
    counts = dict(lost=n_lost, duplicates=n_dup, declined_moved=n_moved,
                  server_only=n_only)
    return problems, counts


def pos_cmd(build, binary, s, prov, seed, duration, drain):
    return [os.path.join(build, binary), "fleet",
            "--server", "127.0.0.1:%d" % s.fixed_pos,
            "--provision", prov, "--terminals", str(N_TERMS),
            "--queue-dir", s.qdir, "--duration", "%.1f" % duration,
            "--closed-loop", "2", "--mix", "float_transfer=100",
            "--amount", "1.00", "--currency", "KES",
            "--max-reconnect-ms", "50", "--drain", str(drain),
            "--seed", str(seed)]


def check_stderr(path):
    with open(path) as f:
        err = f.read()
    for m in SAN_MARKERS:
        assert m not in err, "sanitizer report in soko-pos:\n" + err[-4000:]


def pos_kill_run(build, binary="soko-pos", env=None, seed=11):
    """Returns a dict of figures and findings (see the module head)."""
    s = FixedSokod(build)
    rnd = random.Random(seed)
    penv = dict(os.environ)
    penv.update(env or {})
    fig = dict(pos_kills=0, sokod_kills=0, open_at_kill=0)
    try:
        prov = s.provision(N_TERMS)
        s.start()
        for i in range(1, N_TERMS + 1):
            st, _, data = s.move("fund-pos-kill-%d" % i, {
                "type": "float_topup", "currency": "KES",
                "amount": "%d.00" % (FUND_MINOR // 100),
                "debit": "clearing:fleet",
                "credit": "agent:A%04d:float" % i})
            assert st == 201, data
        t0 = time.time()
        per_seg = N_SOKOD_KILLS // N_POS_KILLS
        for seg in range(N_POS_KILLS):
            out = os.path.join(s.dir, "soko-pos.%d.out" % seg)
            err = os.path.join(s.dir, "soko-pos.%d.err" % seg)
            length = rnd.uniform(1.5, 3.0) * SCALE
            # sokod kills at random moments of the segment, then the
            # terminals' own power cut at its end
            at = sorted(rnd.uniform(0.2, 0.9) * length
                        for _ in range(per_seg))
            with open(out, "w") as fo, open(err, "w") as fe:
                p = subprocess.Popen(
                    pos_cmd(build, binary, s, prov, seed * 100 + seg,
                            600, 40), stdout=fo, stderr=fe, env=penv)
                start = time.time()
                for a in at:
                    while time.time() < start + a:
                        time.sleep(0.005)
                    s.kill9()
                    fig["sokod_kills"] += 1
                    s.start()
                while time.time() < start + length:
                    time.sleep(0.005)
                assert p.poll() is None, \
                    "soko-pos ended before its kill: see " + out
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=20)
                fig["pos_kills"] += 1
            check_stderr(err)
            rows, bad = queue_rows(s.qdir)
            assert not bad, "queue files fail integrity_check: %s" % bad
            fig["open_at_kill"] += sum(1 for v in rows.values()
                                       if v[0] != Q_DONE)
        # the last terminal process: always the correct soko-pos; it runs
        # to its end, drains every queue and checks its own transfers
        out = os.path.join(s.dir, "soko-pos.last.out")
        err = os.path.join(s.dir, "soko-pos.last.err")
        with open(out, "w") as fo, open(err, "w") as fe:
            p = subprocess.run(
                pos_cmd(build, "soko-pos", s, prov, seed * 100 + 99,
                        2.0 * SCALE, 40),
                stdout=fo, stderr=fe, timeout=120 * SCALE)
        check_stderr(err)
        with open(out) as f:
            last_out = f.read()
        rep = {}
        for ln in last_out.splitlines():
            if not ln.startswith("problem") and \
                    not ln.startswith("check failed"):
                rep.update(kv("x " + ln))
        fig["last_rc"] = p.returncode
        fig["last_out"] = last_out
        fig["last_queue_left"] = rep.get("queue_left")
        fig["last_foreign"] = rep.get("foreign")
        fig["took_s"] = time.time() - t0
        s.stop()
        verify = s.ctl("verify", check=False)
        fig["verify_rc"] = verify.returncode
        fig["verify_out"] = verify.stdout + verify.stderr
        qrows, bad = queue_rows(s.qdir)
        fig["bad_queues"] = bad
        fig["transactions"] = len(qrows)
        fig["open"] = sum(1 for v in qrows.values() if v[0] != Q_DONE)
        fig["approved"] = sum(1 for v in qrows.values()
                              if v[0] == Q_DONE and v[1] == CODE_APPROVED)
        pos, ledger, floats = server_view(os.path.join(s.dir, "soko.db"))
        fig["problems"], counts = end_check(qrows, pos, ledger, floats)
        fig.update(counts)
        print("  pos_kill %s: pos_kills=%d sokod_kills=%d transactions=%d "
              "approved=%d open_at_kill=%d resolved_after_restart=%s "
              "lost=%d duplicates=%d server_only=%d duration_s=%.1f" %
              (binary, fig["pos_kills"], fig["sokod_kills"],
               fig["transactions"], fig["approved"], fig["open_at_kill"],
               fig["last_foreign"], fig["lost"], fig["duplicates"],
               fig["server_only"], fig["took_s"]), flush=True)
        return fig
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
        s.cleanup_queues()


def t_fleet_pos_kill(build):
    f = pos_kill_run(build)
    assert f["pos_kills"] >= N_POS_KILLS and \
        f["sokod_kills"] >= N_SOKOD_KILLS, f
    assert f["last_rc"] == 0 and "check ok" in f["last_out"].splitlines(), \
        f["last_out"]
    assert f["transactions"] >= MIN_TXNS, f["transactions"]
    # the kills did hit the terminals with work in flight
    assert f["open_at_kill"] > 0, f
    assert not f["bad_queues"], f["bad_queues"]
    assert f["open"] == 0 and f["last_queue_left"] == "0", f
    assert not f["problems"], "\n".join(f["problems"])
    assert f["verify_rc"] == 0, f["verify_out"]


def t_fleet_pos_kill_canary_fails(build):
    """A terminal that sends before it stores loses transactions when it
    is killed: the same run must find money the server moved for
    transactions no terminal queue knows."""
    f = pos_kill_run(build, binary="soko-pos-canary",
                     env={"SOKOTERM_FAULT": "send_before_store"})
    assert f["pos_kills"] >= N_POS_KILLS, f
    assert f["server_only"] > 0 and f["problems"], \
        "the soko-pos kill test did not detect send_before_store: %r" % \
        {k: v for k, v in f.items() if k != "last_out"}
    print("  canary detected: %d server_only, e.g. %s" %
          (f["server_only"], f["problems"][0]), flush=True)


TESTS = [t_fleet_pos_kill, t_fleet_pos_kill_canary_fails]

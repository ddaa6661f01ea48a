"""test_crash.py - kill -9 sokod repeatedly under a write load.

Clients POST movements with idempotency keys and retry every unanswered
request with the same key and body, across restarts.  After the last
restart:
  - every agent's balance equals the sum of its movements (each counted
    once: nothing lost, nothing doubled);
  - every acknowledged key replays as the same transaction
    (Idempotent-Replayed: true, same txn_id): each ack is present exactly
    once;
  - sokoctl verify is clean.
The same test run against sokod-canary (acknowledges before the commit)
must fail: a crash test that cannot fail proves nothing.
"""
import http.client
import json
import os
import random
import threading
import time

from harness import API_KEY, Sokod

AGENTS = ["agent:A%d:float" % i for i in range(1, 5)]


class Load:
    """Workers that move money until every movement got a 201."""

    def __init__(self, s, n_moves, n_workers, seed):
        rnd = random.Random(seed)
        self.s = s
        self.moves = [("crash-%d" % i, {
            "type": "float_topup", "currency": "KES",
            "amount": "%d.%02d" % (rnd.randint(1, 500), rnd.randint(0, 99)),
            "debit": "clearing:mpesa", "credit": rnd.choice(AGENTS)})
            for i in range(n_moves)]
        self.acked = {}  # key -> txn_id from the first 201
        self.lock = threading.Lock()
        self.next = 0
        self.port = s.port
        self.n_workers = n_workers
        self.retries = 0

    def post(self, key, body):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("POST", "/v1/movements", body=json.dumps(body),
                      headers={"Authorization": "Bearer " + API_KEY,
                               "Idempotency-Key": key})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def worker(self):
        while True:
            with self.lock:
                if self.next >= len(self.moves):
                    return
                key, body = self.moves[self.next]
                self.next += 1
            for attempt in range(2000):
                try:
                    st, data = self.post(key, body)
                except (OSError, http.client.HTTPException):
                    st, data = None, None
                if st == 201:
                    with self.lock:
                        self.acked[key] = json.loads(data)["txn_id"]
                    break
                if st is not None and st != 503:
                    raise AssertionError("%s: unexpected %s %s" %
                                         (key, st, data))
                with self.lock:
                    self.retries += 1
                time.sleep(0.01)
            else:
                raise AssertionError("%s never acknowledged" % key)

    def done_count(self):
        with self.lock:
            return len(self.acked)


def crash_run(build, binary="sokod", env=None, kills=20, n_moves=2000,
              seed=1):
    """Returns the problems found by kind: "lost" (an acknowledged write
    is missing or a balance is short), "txn" (an ack named another
    transaction), "verify", "errors"; all empty = invariants held."""
    s = Sokod(build, binary=binary, env=env)
    s.ctl("account", "create", "clearing:mpesa", "provider_clearing", "KES")
    for a in AGENTS:
        s.ctl("account", "create", a, "agent_float", "KES")
    s.start()
    load = Load(s, n_moves, 8, seed)
    errors = []

    def run_worker():
        try:
            load.worker()
        except AssertionError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=run_worker) for _ in range(8)]
    for t in threads:
        t.start()
    rnd = random.Random(seed)
    per_kill = n_moves // (kills + 2)
    for k in range(kills):
        # kill at a random moment while writes are flowing
        target = (k + 1) * per_kill + rnd.randint(0, per_kill // 2)
        deadline = time.time() + 60
        while load.done_count() < target and time.time() < deadline:
            time.sleep(0.002)
        time.sleep(rnd.uniform(0, 0.02))
        s.kill9()
        s.start()
        load.port = s.port
    for t in threads:
        t.join(600)
    problems = {"lost": [], "txn": [], "verify": [], "errors": errors}
    # final restart, always with the correct sokod: the checker must not
    # trust the server under test to report its own state
    s.kill9()
    s.binary = os.path.join(build, "sokod")
    s.env.pop("SOKO_FAULT", None)
    s.start()
    load.port = s.port
    want = {a: 0 for a in AGENTS}
    for key, body in load.moves:
        units, cents = body["amount"].split(".")
        want[body["credit"]] += int(units) * 100 + int(cents)
    for a in AGENTS:
        got = s.balance(a).replace(".", "")
        if int(got) != want[a]:
            problems["lost"].append("%s balance %s, movements sum %d" %
                                    (a, got, want[a]))
    for key, body in load.moves:
        if key not in load.acked:
            problems["errors"].append("%s never acknowledged" % key)
            continue
        st, h, data = s.move(key, body)
        if st != 201 or h.get("idempotent-replayed") != "true":
            problems["lost"].append("acked %s not present (replay: %s %s)"
                                    % (key, st,
                                       h.get("idempotent-replayed")))
        elif json.loads(data)["txn_id"] != load.acked[key]:
            problems["txn"].append("acked %s txn %s, stored %s" %
                                   (key, load.acked[key],
                                    json.loads(data)["txn_id"]))
    s.stop()
    r = s.ctl("verify", check=False)
    if r.returncode != 0:
        problems["verify"].append(r.stdout.strip())
    print("  crash_run %s: %d kills, %d moves, %d retries, %s" %
          (binary, kills, n_moves, load.retries,
           " ".join("%s=%d" % (k, len(v)) for k, v in problems.items())),
          flush=True)
    return problems


def t_crash_kill9(build):
    problems = crash_run(build, kills=int(os.environ.get("SOKO_KILLS", 20)))
    bad = [p for v in problems.values() for p in v]
    assert not bad, "\n".join(bad[:20])


def t_crash_canary_fails(build):
    """The same test against a server that acks before committing must
    find lost acknowledgements."""
    problems = crash_run(build, binary="sokod-canary",
                         env={"SOKO_FAULT": "ack_before_commit"},
                         kills=int(os.environ.get("SOKO_KILLS", 20)))
    assert problems["lost"], "the crash test did not detect ack-before-commit"
    assert not problems["verify"], problems["verify"]
    print("  canary detected: %s" % problems["lost"][0], flush=True)


TESTS = [t_crash_kill9, t_crash_canary_fails]

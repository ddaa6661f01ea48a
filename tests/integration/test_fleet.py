"""test_fleet.py - soko-pos (firmware-sim/) against the real sokod: the
scripted mode (approve, decline, a transfer whose link drops right after
the send is resolved once after `reconnect`, STATUS), and a fleet of 50
terminals doing >= 2,000 float transfers closed loop between their own
agents, whose own check (STATUS of every approved transfer, agent floats
moved by exactly the approved amounts) must pass, then `sokoctl verify`.

Terminal queue files go to /dev/shm when it exists (issue #3 allows tmpfs
for simulated terminals); sokod's database never does."""
import json
import os
import subprocess
import tempfile

from harness import API_KEY, SAN_MARKERS, WORKDIRS, Sokod

TIMEOUT_S = 50  # a fleet run; the whole file stays well under 60 s


class FleetSokod(Sokod):
    """sokod with a POS listener (pos_listen on port 0, a fresh KEK)."""

    def __init__(self, build):
        super().__init__(build)
        self.kek = os.path.join(self.dir, "pos.kek")
        with open(self.kek, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(self.kek, 0o600)
        self.extra += ["-o", "pos_listen=127.0.0.1:0",
                       "-o", "pos_kek_file=" + self.kek]
        self.pos_port = None
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.qdir = tempfile.mkdtemp(prefix="soko-pos-q-", dir=shm)
        WORKDIRS.append(self.qdir)
        self.keyfile = os.path.join(self.dir, "admin.key")
        with open(self.keyfile, "w") as f:
            f.write(API_KEY + "\n")
        os.chmod(self.keyfile, 0o600)

    def start(self, timeout=20):
        super().start(timeout)
        assert self.pos_port, "no pos= on the readiness line"
        return self

    def provision(self, n):
        """n agents A0001.. with floats and one terminal each; writes the
        provisioning CSV from `sokoctl terminal add` output; its path."""
        self.ctl("account", "create", "clearing:fleet", "provider_clearing",
                 "KES")
        rows = ["terminal_id,agent_code,key_hex,float_account"]
        for i in range(1, n + 1):
            a, t = "A%04d" % i, "T%04d" % i
            acct = "agent:%s:float" % a
            self.ctl("account", "create", acct, "agent_float", "KES")
            self.ctl("agent", "create", a, acct)
            out = self.ctl("-o", "pos_kek_file=" + self.kek, "terminal",
                           "add", t, a).stdout
            key = [p for p in out.split() if p.startswith("key=")][0][4:]
            rows.append("%s,%s,%s,%s" % (t, a, key, acct))
        path = os.path.join(self.dir, "terminals.csv")
        with open(path, "w") as f:
            f.write("\n".join(rows) + "\n")
        os.chmod(path, 0o600)
        return path

    def pos(self, *args, stdin=None, timeout=TIMEOUT_S):
        """Runs soko-pos; asserts a sanitizer-free stderr."""
        r = subprocess.run([os.path.join(self.build, "soko-pos")] +
                           list(args), input=stdin, capture_output=True,
                           text=True, timeout=timeout)
        for m in SAN_MARKERS:
            assert m not in r.stderr, "sanitizer report in soko-pos:\n" + \
                r.stderr[-4000:]
        return r

    def cleanup_queues(self):
        for name in os.listdir(self.qdir):
            os.unlink(os.path.join(self.qdir, name))
        os.rmdir(self.qdir)


def kv(line):
    return dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)


def results(out):
    return [kv(ln) for ln in out.splitlines() if ln.startswith("result ")]


def t_pos_sim_script(build):
    s = FleetSokod(build)
    try:
        prov = s.provision(2)
        s.start()
        st, _, data = s.move("fund-sim-1", {
            "type": "float_topup", "currency": "KES", "amount": "100.00",
            "debit": "clearing:fleet", "credit": "agent:A0001:float"})
        assert st == 201, data
        q = os.path.join(s.qdir, "T0001.db")
        base = ["script", "--server", "127.0.0.1:%d" % s.pos_port,
                "--terminal", "T0001", "--queue", q, "--timeout", "20"]
        script = "\n".join([
            "float_transfer A0002 10.00 KES",
            "wait",
            "status last",
            "float_transfer A0002 99999.00 KES",  # more than the float
            "wait",
            # the link drops right after the send: resolved after login
            "float_transfer A0002 5.00 KES",
            "disconnect",
            "reconnect",
            "wait",
            "status last",
            "echo",
        ]) + "\n"
        r = s.pos(*base, "--provision", prov, stdin=script)
        assert r.returncode == 0, (r.stdout, r.stderr)
        res = results(r.stdout)
        ft = [x for x in res if x["op"] == "float_transfer"]
        sts = [x for x in res if x["op"] == "status"]
        assert [x["code"] for x in ft] == ["APPROVED", "INSUFFICIENT_FLOAT",
                                           "APPROVED"], r.stdout
        # one result per transaction, even across the dropped link
        assert len({x["txn"] for x in ft}) == 3, r.stdout
        assert len(sts) == 2, r.stdout
        assert sts[0]["txn"] == ft[0]["txn"], r.stdout
        assert sts[0]["code"] == "APPROVED" and \
            sts[0]["ref"] == ft[0]["ref"], r.stdout
        assert sts[1]["txn"] == ft[2]["txn"], r.stdout
        assert sts[1]["code"] == "APPROVED" and \
            sts[1]["ref"] == ft[2]["ref"], r.stdout
        assert any(x["op"] == "echo" and x["code"] == "APPROVED"
                   for x in res), r.stdout
        assert "queue open=0" in r.stdout, r.stdout
        # the same queue in a new process: nothing left to replay, and a
        # key given in hex works as well as the provisioning file
        key = [ln.split(",")[2] for ln in open(prov)
               if ln.startswith("T0001,")][0]
        r = s.pos(*base, "--key", key, stdin="status %s\n" % ft[2]["txn"])
        assert r.returncode == 0, (r.stdout, r.stderr)
        again = results(r.stdout)
        assert len(again) == 1 and again[0]["code"] == "APPROVED", r.stdout
        assert "queue open=0" in r.stdout, r.stdout
        assert s.balance("agent:A0001:float") == "85.00"
        assert s.balance("agent:A0002:float") == "15.00"
        s.ctl("verify")
        assert key not in s.stderr_text()
    finally:
        s.stop()
        s.cleanup_queues()


def t_pos_sim_fleet_closed_loop(build):
    s = FleetSokod(build)
    try:
        prov = s.provision(50)
        s.start()
        r = s.pos("fleet", "--server", "127.0.0.1:%d" % s.pos_port,
                  "--provision", prov, "--terminals", "50",
                  "--queue-dir", s.qdir, "--count", "2000",
                  "--closed-loop", "4", "--mix", "float_transfer=100",
                  "--amount", "1.00", "--currency", "KES",
                  "--http", "127.0.0.1:%d" % s.port,
                  "--admin-key-file", s.keyfile,
                  "--fund-from", "clearing:fleet", "--fund", "1000.00",
                  "--drain", "20")
        print(r.stdout.strip().replace("\n", "\n    "), flush=True)
        assert r.returncode == 0, (r.stdout, r.stderr[-2000:])
        assert "check ok" in r.stdout.splitlines(), r.stdout
        rep = {}
        for ln in r.stdout.splitlines():
            rep.update(kv(ln))
        assert int(rep["completed"]) >= 2000, r.stdout
        assert int(rep.get("APPROVED", "0")) >= 2000, r.stdout
        assert rep["queue_left"] == "0", r.stdout
        # the fleet's agents together hold exactly what was funded
        total = sum(float(s.balance("agent:A%04d:float" % i))
                    for i in range(1, 51))
        assert abs(total - 50 * 1000.00) < 0.001, total
        s.ctl("verify")
    finally:
        s.stop()
        s.cleanup_queues()


def eods(out):
    return [kv(ln) for ln in out.splitlines() if ln.startswith("eod ")]


def t_pos_sim_eod(build):
    """End of day from libsokoterm (soko-pos `eod`): the terminal counts
    its batch from its queue, sokod compares; a reversal leaves both
    sides' totals; a transfer this queue never saw (the same terminal
    through another queue file) is a TOTALS_MISMATCH that still closes
    the batch; an earlier batch asked again is recomputed, closes
    nothing new; a close whose answer was lost is sent again with the
    same number."""
    s = FleetSokod(build)
    try:
        prov = s.provision(2)
        s.start()
        st, _, data = s.move("fund-eod-1", {
            "type": "float_topup", "currency": "KES", "amount": "100.00",
            "debit": "clearing:fleet", "credit": "agent:A0001:float"})
        assert st == 201, data
        q = os.path.join(s.qdir, "T0001.db")
        base = ["script", "--server", "127.0.0.1:%d" % s.pos_port,
                "--terminal", "T0001", "--provision", prov, "--queue", q,
                "--timeout", "20"]

        def run(script, rc=0):
            r = s.pos(*base, stdin="\n".join(script) + "\n")
            assert r.returncode == rc, (r.stdout, r.stderr)
            return r.stdout

        out = run(["float_transfer A0002 10.00 KES",
                   "float_transfer A0002 2.50 KES",
                   "float_transfer A0002 99999.00 KES",  # declined
                   "float_transfer A0002 1.00 KES", "wait",
                   "reversal last", "wait", "eod", "wait"])
        res = [x for x in results(out) if x["op"] == "eod"]
        assert len(res) == 1 and res[0]["code"] == "APPROVED", out
        e = eods(out)
        # 10.00 + 2.50; the declined and the reversed are in neither
        assert e == [{"batch": "1", "terminal": "float_transfer/404/2/1250",
                      "server": "float_transfer/404/2/1250"}], out
        # batch 2: empty on both sides
        out = run(["eod", "wait"])
        assert eods(out)[0] == {"batch": "2", "terminal": "-",
                                "server": "-"}, out
        # a transfer of T0001 this queue never saw: the server counts it
        other = os.path.join(s.qdir, "T0001-other.db")
        r = s.pos("script", "--server", "127.0.0.1:%d" % s.pos_port,
                  "--terminal", "T0001", "--provision", prov, "--queue",
                  other, stdin="float_transfer A0002 3.00 KES\nwait\n")
        assert r.returncode == 0, (r.stdout, r.stderr)
        out = run(["float_transfer A0002 4.00 KES", "wait", "eod", "wait"])
        res = [x for x in results(out) if x["op"] == "eod"]
        assert res[0]["code"] == "TOTALS_MISMATCH", out
        assert eods(out)[0] == {"batch": "3",
                                "terminal": "float_transfer/404/1/400",
                                "server": "float_transfer/404/2/700"}, out
        # closed anyway: the next close is batch 4; batch 1 asked again
        # gives its totals again
        out = run(["eod 1", "wait", "eod", "wait"])
        e = eods(out)
        assert [x["batch"] for x in e] == ["1", "4"], out
        assert e[0]["server"] == "float_transfer/404/2/1250", out
        # a number below the newest that the queue does not know
        out = run(["eod 2", "wait"])
        assert eods(out)[0]["batch"] == "2", out
        out = run(["eod 3000000000", "eod 7"], rc=1)
        bad = [x for x in results(out) if x["op"] == "eod"]
        assert bad[0].get("code") == "APPROVED", out  # a new batch N
        assert bad[1].get("err") == "ARG", out  # 7 < 3000000000
        # the close's answer lost: the link drops before the answer
        # comes; the next close sends the same number
        out = run(["float_transfer A0002 1.00 KES", "wait", "eod",
                   "disconnect"], rc=0)
        out = run(["eod", "wait"])
        assert eods(out)[0]["batch"] == "3000000001", out
        assert eods(out)[0]["terminal"] == "float_transfer/404/1/100", out
        # interactive mode: menu 9 closes the next batch
        r = s.pos("interactive", "--server", "127.0.0.1:%d" % s.pos_port,
                  "--terminal", "T0001", "--provision", prov, "--queue", q,
                  stdin="9\n5\n")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "9 end of day" in r.stdout, r.stdout
        assert "eod batch=3000000002 terminal=- server=-" in r.stdout, \
            r.stdout
        # --keep-batches 1: after a close, only the newest closed
        # batch's entries stay in the queue file
        import sqlite3
        r = s.pos(*base, "--keep-batches", "1",
                  stdin="float_transfer A0002 1.00 KES\nwait\neod\nwait\n"
                        "float_transfer A0002 1.00 KES\n"
                        "float_transfer A0002 1.00 KES\nwait\neod\nwait\n")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert eods(r.stdout)[1]["terminal"] == "float_transfer/404/2/200"
        db = sqlite3.connect(q)
        assert db.execute("SELECT count(*) FROM q").fetchone()[0] == 2
        db.close()
        s.ctl("verify")
    finally:
        s.stop()
        s.cleanup_queues()


def wire(s, prov, *args):
    """Runs bench/pos_wire against s; (returncode, report dict, stdout)."""
    r = subprocess.run(
        [os.path.join(s.build, "bench", "pos_wire"), "--server",
         "127.0.0.1:%d" % s.pos_port, "--provision", prov,
         "--http", "127.0.0.1:%d" % s.port, "--admin-key-file", s.keyfile,
         "--amount", "100", "--currency", "404", "--drain", "20"] +
        list(args), capture_output=True, text=True, timeout=TIMEOUT_S)
    for m in SAN_MARKERS:
        assert m not in r.stderr, "sanitizer report in pos_wire:\n" + \
            r.stderr[-4000:]
    print(r.stdout.strip().replace("\n", "\n    "), flush=True)
    rep = {}
    for ln in r.stdout.splitlines():
        rep.update(kv(ln))
    return r.returncode, rep, r.stdout


def t_pos_wire(build):
    """bench/pos_wire (the benchmark's wire-level load, no terminal
    queues): its closed and open loops against a real sokod, every answer
    APPROVED and every float moved by exactly the approved amounts
    (its --http check), the ledger clean; and its check fails when a
    terminal cannot log in (a wrong key), so a run that lost requests
    cannot pass."""
    s = FleetSokod(build)
    try:
        prov = s.provision(20)
        s.start()
        for i in range(1, 21):
            st, _, data = s.move("wire-fund-%d" % i, json.dumps({
                "type": "float_topup", "currency": "KES",
                "amount": "1000.00", "debit": "clearing:fleet",
                "credit": "agent:A%04d:float" % i}))
            assert st == 201, (st, data)
        rc, rep, out = wire(s, prov, "--window", "4", "--duration", "2",
                            "--warmup", "0.5", "--threads", "2")
        assert rc == 0, out
        assert "check ok" in out and "balances=checked" in out, out
        assert int(rep["approved"]) > 100, out
        assert rep["unanswered"] == "0" and rep["dead"] == "0", out
        rc, rep, out = wire(s, prov, "--rate", "400", "--duration", "1",
                            "--warmup", "0.2")
        assert rc == 0, out
        assert "mode=open" in out and "check ok" in out, out
        assert int(rep["offered"]) > 100, out
        assert float(rep["p99"]) > 0, out
        # the agents together still hold exactly what was funded
        total = sum(float(s.balance("agent:A%04d:float" % i))
                    for i in range(1, 21))
        assert abs(total - 20 * 1000.00) < 0.001, total
        # a wrong key: that terminal is refused at login, the check fails
        rows = open(prov).read().splitlines()
        f = rows[1].split(",")
        f[2] = ("0" if f[2][0] != "0" else "1") + f[2][1:]
        rows[1] = ",".join(f)
        bad = os.path.join(s.dir, "bad.csv")
        with open(bad, "w") as fh:
            fh.write("\n".join(rows) + "\n")
        rc, rep, out = wire(s, bad, "--window", "2", "--duration", "0.5",
                            "--warmup", "0")
        assert rc == 1, out
        assert "check failed" in out and rep["dead"] == "1", out
        s.ctl("verify")
    finally:
        s.stop()
        s.cleanup_queues()


TESTS = [t_pos_sim_script, t_pos_sim_fleet_closed_loop, t_pos_sim_eod,
         t_pos_wire]

"""test_fleet_mix.py - soko-pos fleet mode with a mix of operations
against sokod and soko-sandbox (issue #3: "fleet mode: N terminals ...
a mix of operations, link drops").

t_pos_fleet_mix: 8 terminals of 4 EUR agents, closed loop, links dropped
every 0.3 s: float transfers, COLLECT, CASH_OUT and CASH_IN through MTN
MoMo (customers that pay and one that refuses), STATUS of each
terminal's last transaction and REVERSAL of its last approved transfer,
then each terminal's end-of-day close (--eod).  The fleet's own check must pass (every
approved transaction asked again by STATUS, same code and ref; every
float moved by exactly what was approved: transfers between agents,
collections and cash-outs in, cash-ins out), the sandbox must hold
exactly one charge per provider operation the fleet submitted (none
doubled by a resend after a dropped link), and `sokoctl verify` must be
clean.

t_pos_fleet_bills: 4 terminals of 2 NGN agents: float transfers,
BILL_VALIDATE and BILL_PAY through Flutterwave (a meter that pays and
one the biller refuses, whose funding comes back)."""
import os
import subprocess
import tempfile

from harness import API_KEY, SAN_MARKERS, WORKDIRS
from test_pos_prov import (Env, FLW_SECRET, METER, METER_REFUSED,
                           MOMO_OK, MOMO_REJECTED, POWER)

assert FLW_SECRET  # Env(bills=True) configures Flutterwave with it

MOMO_OK2 = "46733123458"  # another paying customer (sandbox: SUCCESSFUL)


def provision(e, currency, clearing, n_agents, per_agent, prefix):
    """n_agents agents with a float in currency, per_agent terminals
    each; the provisioning CSV and the admin key file (paths)."""
    rows = ["terminal_id,agent_code,key_hex,float_account"]
    for i in range(1, n_agents + 1):
        a = "%sA%d" % (prefix, i)
        acct = "agent:%s:float" % a
        e.s.ctl("account", "create", acct, "agent_float", currency,
                "--floor", "0")
        e.s.ctl("agent", "create", a, acct)
        for k in range(1, per_agent + 1):
            t = "%sT%d%d" % (prefix, i, k)
            rows.append("%s,%s,%s,%s" % (t, a, e.terminal_add(t, a).hex(),
                                         acct))
    path = os.path.join(e.s.dir, prefix + "terminals.csv")
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")
    os.chmod(path, 0o600)
    keyfile = os.path.join(e.s.dir, "admin.key")
    with open(keyfile, "w") as f:
        f.write(API_KEY + "\n")
    os.chmod(keyfile, 0o600)
    return path


def fleet(e, prov, n_terms, currency, clearing, fund, amount, *args):
    """Runs soko-pos fleet; the report as one dict (later keys win; the
    codes lines are kept apart) and the stdout."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    qdir = tempfile.mkdtemp(prefix="soko-pos-mix-", dir=shm)
    WORKDIRS.append(qdir)
    r = subprocess.run(
        [os.path.join(e.build, "soko-pos"), "fleet", "--server",
         "127.0.0.1:%d" % e.pos_port, "--provision", prov, "--terminals",
         str(n_terms), "--queue-dir", qdir, "--amount", amount,
         "--currency", currency, "--http", "127.0.0.1:%d" % e.port,
         "--admin-key-file", os.path.join(e.s.dir, "admin.key"),
         "--fund-from", clearing, "--fund", fund, "--drain", "40",
         "--max-reconnect-ms", "200", "--seed", "7", "--eod"] + list(args),
        capture_output=True, text=True, timeout=180)
    for m in SAN_MARKERS:
        assert m not in r.stderr, r.stderr[-4000:]
    print(r.stdout.strip().replace("\n", "\n    "), flush=True)
    assert r.returncode == 0, (r.stdout, r.stderr[-3000:])
    assert "check ok" in r.stdout.splitlines(), r.stdout
    # --eod: every terminal closed its batch and its totals (from its
    # queue) equal the server's (from the ledger)
    assert " eod_ok=%d" % n_terms in r.stdout, r.stdout
    rep = {}
    for ln in r.stdout.splitlines():
        parts = ln.split()
        if not parts:
            continue
        key = "counters" if "=" in parts[0] else parts[0]
        rep[key] = dict(p.split("=", 1)
                        for p in parts[(key != "counters"):] if "=" in p)
    return rep, r.stdout


def t_pos_fleet_mix(build):
    e = Env(build)
    try:
        prov = provision(e, "EUR", "clearing:momo", 4, 2, "M")
        rep, out = fleet(
            e, prov, 8, "EUR", "clearing:momo", "200.00", "1.00",
            "--duration", "3", "--closed-loop", "2", "--drop-every", "0.3",
            "--mix", "float_transfer=30,collect=25,cash_out=15,"
                     "cash_in=15,status=10,receipt=5,reversal=5",
            "--provider", "momo",
            "--msisdn", ",".join((MOMO_OK, MOMO_OK2, MOMO_REJECTED)))
        ops = rep["ops"]
        for op in ("float_transfer", "collect", "cash_out", "cash_in",
                   "status", "receipt", "reversal"):
            assert int(ops[op]) > 0, out
        # agents voided some of their transfers: each one moved nothing
        # (floats), STATUS says REVERSED, and both sides' EOD totals
        # left it out
        assert int(ops["reversed"]) > 0, out
        # collections are answered PENDING first, then pushed
        assert int(ops["pending"]) > 0, out
        codes = rep["codes"]
        assert int(codes.get("APPROVED", "0")) > 0, out
        # the refusing customer: APPROVAL_REJECTED (collections, cash-
        # outs) and a failed transfer (cash-ins) are declines
        assert sum(int(v) for k, v in codes.items()
                   if k != "APPROVED") > 0, out
        assert int(rep["reads"]["ok"]) > 0, out
        assert int(rep["counters"]["drops"]) > 0, out  # links dropped
        # one sandbox charge per provider operation, never two
        ch = e.charges()
        n_prov = sum(int(ops[k]) for k in ("collect", "cash_out",
                                            "cash_in"))
        refs = [c["client_ref"] for c in ch]
        assert len(refs) == n_prov, (len(refs), n_prov, out)
        assert len(set(refs)) == len(refs), refs
        e.verify()
    finally:
        e.stop()


def t_pos_fleet_bills(build):
    e = Env(build, bills=True)
    try:
        prov = provision(e, "NGN", "clearing:topup", 2, 2, "B")
        rep, out = fleet(
            e, prov, 4, "NGN", "clearing:topup", "5000.00", "10.00",
            "--count", "120", "--closed-loop", "2",
            "--mix", "float_transfer=40,bill_validate=20,bill_pay=40",
            "--biller", POWER,
            "--bill-account", ",".join((METER, METER, METER_REFUSED)))
        ops = rep["ops"]
        for op in ("float_transfer", "bill_validate", "bill_pay"):
            assert int(ops[op]) > 0, out
        codes = rep["codes"]
        assert int(codes.get("APPROVED", "0")) > 0, out
        assert int(codes.get("DECLINED", "0")) > 0, out  # refused meter
        assert int(rep["reads"]["ok"]) == int(ops["bill_validate"]), out
        e.verify()
    finally:
        e.stop()


def t_pos_fleet_offline_bills(build):
    """--offline with bills: each terminal stores float transfers and
    bills paid in cash while no link is up (STORED, "will be sent"),
    then replays them as ADVICE_BATCHes with links dropped every 0.2 s
    (resends of batches whose answer was lost); every stored bill is
    funded from the float and paid once (one biller charge per bill,
    none doubled), STATUS says STORED or, once paid, APPROVED, floats
    moved by exactly the stored ops, both sides' EOD totals agree."""
    e = Env(build, bills=True)
    try:
        prov = provision(e, "NGN", "clearing:topup", 2, 2, "O")
        rep, out = fleet(
            e, prov, 4, "NGN", "clearing:topup", "5000.00", "10.00",
            "--offline", "30", "--drop-every", "0.03",
            "--mix", "float_transfer=50,bill_pay=50",
            "--biller", POWER, "--bill-account", METER)
        ops = rep["ops"]
        n_bills = int(ops["bill_pay"])
        assert n_bills > 0 and int(ops["float_transfer"]) > 0, out
        assert n_bills + int(ops["float_transfer"]) == 4 * 30, out
        # every one STORED, except a bill whose advice's answer was lost
        # to a cut link and that the terminal then resolved by STATUS
        # after the biller paid: APPROVED (docs/pos-protocol.md §6.12);
        # a float transfer's advice is STORED for good
        n_stored = int(rep["codes"].get("STORED", "0"))
        n_late = int(rep["codes"].get("APPROVED", "0"))
        assert n_stored + n_late == 4 * 30, out
        assert n_late <= n_bills and n_stored >= int(ops["float_transfer"]), out
        assert int(rep["counters"]["drops"]) > 0, out  # mid-replay
        refs = [c["client_ref"] for c in e.charges()]
        assert len(refs) == n_bills, (len(refs), n_bills, out)
        assert len(set(refs)) == len(refs), refs
        e.verify()
    finally:
        e.stop()


TESTS = [t_pos_fleet_mix, t_pos_fleet_bills, t_pos_fleet_offline_bills]

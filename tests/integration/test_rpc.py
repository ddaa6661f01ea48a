"""test_rpc.py - POS messages over HTTP (POST /rpc and /rpc.batch,
docs/api.md "POS messages over HTTP"): a trusted client with the admin
key sends a terminal's request bodies as CBOR and gets the same answers
a terminal gets over its own connection: a float transfer approved and
durable, its resend DUPLICATE (also across the two transports), STATUS,
a batch of several in order, an unknown type refused as such; an
unknown or blocked terminal, a missing key, a wrong media type, a bad
envelope, an oversized body and LOGIN are refused with their codes, and
nothing moves."""
import os

from harness import API_KEY
from test_pos import (APPROVED, DUPLICATE, ECHO, FAIL, FLOAT_TRANSFER,
                      INSUFFICIENT_FLOAT, KES, LOGIN, LOGIN_OK, MALFORMED,
                      RESP, STATUS, UNSUPPORTED_TYPE, cbor, setup, uncbor)

CT = {"Content-Type": "application/cbor"}


def rpc(s, terminal, type_, body, auth=True, raw=None, headers=None):
    h = dict(CT)
    h["Soko-Terminal"] = terminal
    h["Soko-Type"] = str(type_)
    h.update(headers or {})
    st, hd, data = s.request("POST", "/rpc",
                             raw if raw is not None else cbor(body),
                             headers=h, auth=auth)
    if st != 200:
        return st, hd, data
    return st, int(hd["soko-type"]), uncbor(data)[0]


def batch(s, terminal, items, raw=None):
    h = dict(CT)
    h["Soko-Terminal"] = terminal
    st, _, data = s.request("POST", "/rpc.batch",
                            raw if raw is not None else
                            cbor([[t, b] for t, b in items]), headers=h)
    if st != 200:
        return st, data
    return st, uncbor(data)[0]


def t_pos_rpc(build):
    s, keys = setup(build)
    try:
        txn = os.urandom(16)
        body = {1: txn, 2: 12500, 3: KES, 4: "A2"}
        st, ty, r = rpc(s, "T1", FLOAT_TRANSFER, body)
        assert st == 200 and ty == FLOAT_TRANSFER | RESP, (st, ty, r)
        assert r[1] == APPROVED and r[2] == txn and r[3].startswith("FT-")
        assert s.balance("agent:A1:float") == "875.00"
        assert s.balance("agent:A2:float") == "125.00"
        # a resend, over HTTP and over the terminal's own connection
        st, ty, d = rpc(s, "T1", FLOAT_TRANSFER, body)
        assert d[1] == DUPLICATE and d[7] == APPROVED and d[3] == r[3], d
        t = s.term("T1", keys["T1"])
        assert t.login()[0] == LOGIN_OK
        _, d2 = t.transfer(txn, 12500, "A2")
        assert d2[1] == DUPLICATE and d2[3] == r[3], d2
        t.close()
        st, ty, sr = rpc(s, "T1", STATUS, {1: txn})
        assert ty == STATUS | RESP and sr[1] == APPROVED, sr
        # hex types work too; a float too low is the terminal's answer
        st, ty, x = rpc(s, "T1", "0x13", {1: os.urandom(16), 2: 10 ** 9,
                                          3: KES, 4: "A2"})
        assert ty == FLOAT_TRANSFER | RESP and x[1] == INSUFFICIENT_FLOAT
        # a batch: answers in order, each as over a connection
        t2 = os.urandom(16)
        st, out = batch(s, "T1", [
            (FLOAT_TRANSFER, {1: t2, 2: 100, 3: KES, 4: "A3"}),
            (STATUS, {1: t2}),
            (ECHO, {1: 7}),
            (0x0050, {1: 1}),              # a type sokod does not know
            (FLOAT_TRANSFER, {1: b"short"}),  # not a valid body
        ])
        assert st == 200 and len(out) == 5, (st, out)
        assert out[0][0] == FLOAT_TRANSFER | RESP and out[0][1][1] == APPROVED
        # the STATUS may run while the transfer fed before it still
        # looks its payee up: RETRY_LATER then, never UNKNOWN_TXN
        assert out[1][0] == STATUS | RESP and out[1][1][1] in (APPROVED,
                                                              30), out[1]
        assert out[2][0] == ECHO | RESP, out[2]
        assert out[3][0] == FAIL and out[3][1][1] == UNSUPPORTED_TYPE, out[3]
        assert out[4][0] == FLOAT_TRANSFER | FAIL and \
            out[4][1][1] == MALFORMED, out[4]
        assert s.balance("agent:A3:float") == "1.00"
        before = (s.balance("agent:A1:float"), s.balance("agent:A2:float"))
        # refusals: nothing moves
        st, _, e = rpc(s, "T-nope", FLOAT_TRANSFER, body)
        assert st == 404 and b"terminal_unknown" in e, (st, e)
        st, _, e = rpc(s, "T1", FLOAT_TRANSFER, body, auth=False)
        assert st == 401 and b"unauthorized" in e, (st, e)
        st, _, e = rpc(s, "T1", LOGIN, body)
        assert st == 400 and b"rpc_type_invalid" in e, (st, e)
        st, _, e = rpc(s, "T1", "nineteen", body)
        assert st == 400 and b"rpc_type_invalid" in e, (st, e)
        st, _, e = rpc(s, "T1", FLOAT_TRANSFER, body,
                       headers={"Content-Type": "application/json"})
        assert st == 415 and b"unsupported_media_type" in e, (st, e)
        st, _, e = rpc(s, "", FLOAT_TRANSFER, body)
        assert st == 400 and b"terminal_invalid" in e, (st, e)
        st, _, e = rpc(s, "T1", FLOAT_TRANSFER, None, raw=b"\xff\x00garbage")
        assert st == 200 and e[1] == MALFORMED, (st, e)  # the POS answer
        st, e = batch(s, "T1", [], raw=b"\x81\x82\x13")  # cut short
        assert st == 400 and b"rpc_malformed" in e, (st, e)
        st, e = batch(s, "T1", [], raw=cbor([[1, {}]]))  # LOGIN in batch
        assert st == 400 and b"rpc_malformed" in e, (st, e)
        st, e = batch(s, "T1", [(FLOAT_TRANSFER, {})] * 33)
        assert st == 400 and b"rpc_malformed" in e, (st, e)
        st, e = batch(s, "T1", [], raw=cbor([[FLOAT_TRANSFER, {}]]) + b"x")
        assert st == 400 and b"rpc_malformed" in e, (st, e)
        # over http_max_body (64 KiB by default): refused by the listener
        st, _, e = rpc(s, "T1", FLOAT_TRANSFER, None,
                       raw=b"\xa0" * (64 * 1024 + 1))
        assert st == 413, (st, e)
        st, _, e = s.request("GET", "/rpc", headers=CT)
        assert st == 405, (st, e)
        s.ctl("terminal", "block", "T2")
        st, _, e = rpc(s, "T2", ECHO, {1: 1})
        assert st == 403 and b"terminal_blocked" in e, (st, e)
        assert (s.balance("agent:A1:float"),
                s.balance("agent:A2:float")) == before
        # no session is left behind: every /rpc closed its own
        m = s.request("GET", "/metrics")[2].decode()
        live = [ln for ln in m.splitlines()
                if ln.startswith("soko_pos_connections ")]
        assert live and live[0].split()[1] == "0", live
        s.ctl("verify")
    finally:
        s.stop()


def key_of(out):
    return [p for p in out.split() if p.startswith("key=")][0][4:]


def t_pos_rpc_keys(build):
    """Partner keys (sokoctl rpc-key, docs/operations.md "Partner keys"):
    a key scoped to an agent, a merchant or one terminal sends POS
    messages for those terminals only (another one, or an unknown one:
    403 terminal_forbidden, the same answer); a revoked key, a made-up
    key and a key of the wrong form are 401; a partner key never opens
    the admin API; sokoctl keeps only hashes (the key appears once) and
    refuses unknown scopes and names taken."""
    s, keys = setup(build)
    try:
        s.ctl("account", "create", "merchant:M1:payable", "merchant_payable",
              "KES")
        s.ctl("merchant", "create", "M1", "merchant:M1:payable")
        s.ctl("-o", "pos_kek_file=" + s.kek, "terminal", "add", "T9", "A1",
              "--merchant", "M1")
        ka = key_of(s.ctl("rpc-key", "create", "bank-a", "agent", "A1").stdout)
        km = key_of(s.ctl("rpc-key", "create", "shop-m1", "merchant",
                          "M1").stdout)
        kt = key_of(s.ctl("rpc-key", "create", "till-t2", "terminal",
                          "T2").stdout)
        assert ka.startswith("soko_rpc_") and len(ka) == 73, ka
        r = s.ctl("rpc-key", "create", "bank-a", "agent", "A2", check=False)
        assert r.returncode != 0 and "already exists" in r.stderr, r
        r = s.ctl("rpc-key", "create", "x", "agent", "A-nope", check=False)
        assert r.returncode != 0 and "no such scope" in r.stderr, r
        r = s.ctl("rpc-key", "create", "x", "bank", "A1", check=False)
        assert r.returncode != 0 and "scope kind" in r.stderr, r
        lst = s.ctl("rpc-key", "list").stdout
        assert "bank-a" in lst and "scope=agent:A1 active" in lst, lst
        assert ka not in lst and ka[9:] not in lst, lst

        def call(key, term, type_=ECHO, body=None):
            return rpc(s, term, type_, body or {1: 1},
                       headers={"Authorization": "Bearer " + key})

        # in scope: the agent's terminals (T1, and T9 of its merchant),
        # the merchant's terminal, the one terminal
        for key, term in ((ka, "T1"), (ka, "T9"), (km, "T9"), (kt, "T2")):
            st, ty, r = call(key, term)
            assert st == 200 and ty == ECHO | RESP, (key, term, st, r)
        txn = os.urandom(16)
        st, ty, r = call(ka, "T1", FLOAT_TRANSFER,
                         {1: txn, 2: 2500, 3: KES, 4: "A2"})
        assert st == 200 and r[1] == APPROVED, r
        assert s.balance("agent:A2:float") == "25.00"
        # out of scope, or unknown: the same 403, nothing moves
        for key, term in ((ka, "T2"), (km, "T1"), (kt, "T3"),
                          (ka, "T-nope")):
            st, _, e = call(key, term, FLOAT_TRANSFER,
                            {1: os.urandom(16), 2: 100, 3: KES, 4: "A3"})
            assert st == 403 and b"terminal_forbidden" in e, (term, st, e)
        # wrong keys: 401
        fake = "soko_rpc_" + "0" * 64
        for key in (fake, ka[:-1], ka.upper(), "", API_KEY + "x"):
            st, _, e = call(key, "T1")
            assert st == 401 and b"unauthorized" in e, (key, st, e)
        # a partner key is not an admin key
        st, _, e = s.request("GET", "/v1/accounts/agent:A1:float",
                             headers={"Authorization": "Bearer " + ka})
        assert st == 401, (st, e)
        # revoked: refused from the next call on
        assert "revoked" in s.ctl("rpc-key", "revoke", "till-t2").stdout
        st, _, e = call(kt, "T2")
        assert st == 401, (st, e)
        r = s.ctl("rpc-key", "revoke", "nope", check=False)
        assert r.returncode != 0 and "no such rpc key" in r.stderr, r
        assert "scope=terminal:T2 revoked" in s.ctl("rpc-key",
                                                     "list").stdout
        assert s.balance("agent:A3:float") == "0.00"
        # the keys are nowhere in the log; their names are
        with open(s.stderr_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        assert "key=bank-a code=approved" in log, log[-2000:]
        for k in (ka, km, kt):
            assert k[9:] not in log
        s.ctl("verify")
    finally:
        s.stop()


TESTS = [t_pos_rpc, t_pos_rpc_keys]

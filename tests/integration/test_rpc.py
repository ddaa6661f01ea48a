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
        assert out[1][0] == STATUS | RESP and out[1][1][1] in (APPROVED,
                                                              13), out[1]
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


TESTS = [t_pos_rpc]

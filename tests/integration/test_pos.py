"""test_pos.py - sokod's POS listener over a real socket
(docs/pos-protocol.md): provisioning with sokoctl, login, float transfers
with idempotency, STATUS, REVERSAL (tombstones, late originals),
ADVICE_BATCH, EOD_TOTALS, RECEIPT, terminal and agent limits, refusals
(blocked, wrong key, bad MAC, replayed counter, garbage, oversized
length), and a clean ledger at the end.

A small POS client in the Python standard library: frames, HMAC-SHA256/16,
the session key, and the canonical CBOR subset of §5.2 (hand-written)."""
import hashlib
import hmac
import os
import socket
import struct
import time

from harness import Sokod

# ---- canonical CBOR subset (§5.2) ------------------------------------


def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(v):
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return _head(0, v)
    if isinstance(v, bytes):
        return _head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return _head(3, len(b)) + b
    if isinstance(v, list):
        return _head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return _head(5, len(v)) + b"".join(cbor(k) + cbor(v[k])
                                           for k in sorted(v))
    raise TypeError(v)


def uncbor(b, i=0):
    """(value, next index)"""
    ib = b[i]
    major, ai = ib >> 5, ib & 31
    i += 1
    if major == 7:
        return {20: False, 21: True, 22: None}[ai], i
    if ai < 24:
        n = ai
    else:
        size = {24: 1, 25: 2, 26: 4, 27: 8}[ai]
        n = int.from_bytes(b[i:i + size], "big")
        i += size
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major in (2, 3):
        s = b[i:i + n]
        return (s if major == 2 else s.decode()), i + n
    if major == 4:
        out = []
        for _ in range(n):
            x, i = uncbor(b, i)
            out.append(x)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = uncbor(b, i)
            out[k], i = uncbor(b, i)
        return out, i
    raise ValueError("unsupported CBOR")


# ---- frames (§2, §4) ---------------------------------------------------

LOGIN, LOGIN_OK, LOGIN_FAIL = 0x0001, 0x8001, 0xC001
ECHO, FLOAT_TRANSFER, STATUS, CASH_IN = 0x0002, 0x0013, 0x0030, 0x0011
REVERSAL, RECEIPT, ADVICE_BATCH, EOD_TOTALS = 0x0031, 0x0032, 0x0040, 0x0041
CASH_OUT, BILL_PAY, COLLECT = 0x0012, 0x0021, 0x0010
RESP, FAIL = 0x8000, 0xC000
APPROVED, STORED, DUPLICATE, REVERSED = 0, 2, 3, 4
DECLINED, INSUFFICIENT_FLOAT, LIMIT_EXCEEDED = 10, 11, 12
UNKNOWN_TXN, AMOUNT_INVALID, UNKNOWN_AGENT = 13, 16, 18
NOT_REVERSIBLE, TXN_ID_REUSED, TOTALS_MISMATCH = 19, 20, 21
RETRY_LATER = 30
BAD_MAC, BAD_COUNTER, MALFORMED = 40, 41, 43
UNSUPPORTED_TYPE, NOT_LOGGED_IN, AUTH_FAILED, BLOCKED = 44, 45, 46, 47
KES = 404
ZERO_MAC = bytes(16)


def mac(key, auth):
    return hmac.new(key, auth, hashlib.sha256).digest()[:16]


def frame(type_, req_id, counter, body, key):
    auth = struct.pack(">BBHIQ", 1, 0, type_, req_id, counter) + cbor(body)
    m = mac(key, auth) if key is not None else ZERO_MAC
    return struct.pack(">H", len(auth) + 16) + auth + m


class Closed(Exception):
    pass


class Term:
    """One terminal connection."""

    def __init__(self, port, tid, kt):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.tid, self.kt, self.ks = tid, kt, None
        self.tx, self.rx, self.req = 1, 0, 0
        self.buf = b""

    def close(self):
        self.s.close()

    def send_raw(self, data):
        self.s.sendall(data)

    def read_frame(self):
        """(type, req_id, counter, body, mac, auth) or raises Closed."""
        while True:
            if len(self.buf) >= 2:
                n = struct.unpack(">H", self.buf[:2])[0]
                if len(self.buf) >= 2 + n:
                    f, self.buf = self.buf[:2 + n], self.buf[2 + n:]
                    auth, m = f[2:-16], f[-16:]
                    _, _, t, rid, ctr = struct.unpack(">BBHIQ", auth[:16])
                    body, end = uncbor(auth, 16)
                    assert end == len(auth), "bytes after the body"
                    return t, rid, ctr, body, m, auth
            d = self.s.recv(65536)
            if not d:
                raise Closed()
            self.buf += d

    def expect_closed(self):
        try:
            while True:
                self.read_frame()
        except (Closed, ConnectionResetError):
            return
        except socket.timeout:
            raise AssertionError("connection not closed")

    def login(self):
        cn = os.urandom(16)
        self.send_raw(frame(LOGIN, 1, 0, {1: self.tid, 2: cn,
                                          3: "test_pos.py"}, self.kt))
        t, rid, ctr, body, m, auth = self.read_frame()
        if t == LOGIN_OK:
            assert rid == 1 and ctr == 0, (rid, ctr)
            assert m == mac(self.kt, auth), "LOGIN_OK MAC"
            assert body[2] == cn, "client nonce not echoed"
            sn = body[1]
            self.ks = hmac.new(self.kt, b"soko-pos-v1 session" +
                               self.tid.encode() + cn + sn,
                               hashlib.sha256).digest()
        return t, body, m, auth

    def request(self, type_, body, counter=None, corrupt=False):
        self.req += 1
        f = bytearray(frame(type_, self.req, self.tx if counter is None
                            else counter, body, self.ks))
        self.tx += 1
        if corrupt:
            f[-20] ^= 0x01  # a bit in the body
        self.send_raw(bytes(f))
        t, rid, ctr, rbody, m, auth = self.read_frame()
        assert rid == self.req, (rid, self.req)
        assert m == mac(self.ks, auth), "response MAC"
        assert ctr > self.rx, "server counter not increasing"
        self.rx = ctr
        return t, rbody

    def transfer(self, txn, amount, to, currency=KES):
        return self.request(FLOAT_TRANSFER, {1: txn, 2: amount,
                                             3: currency, 4: to})


# ---- sokod with a POS listener -----------------------------------------


class PosSokod(Sokod):
    def __init__(self, build):
        d = None
        super().__init__(build, workdir=d)
        self.kek = os.path.join(self.dir, "pos.kek")
        with open(self.kek, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(self.kek, 0o600)
        self.extra += ["-o", "pos_listen=127.0.0.1:0",
                       "-o", "pos_kek_file=" + self.kek]
        self.pos_port = None

    def start(self, timeout=20):
        super().start(timeout)
        assert self.pos_port, "no pos= on the readiness line"
        return self

    def terminal_add(self, tid, agent):
        out = self.ctl("-o", "pos_kek_file=" + self.kek, "terminal", "add",
                       tid, agent).stdout
        key = [p for p in out.split() if p.startswith("key=")][0][4:]
        return bytes.fromhex(key)

    def term(self, tid, kt):
        return Term(self.pos_port, tid, kt)


def setup(build, limits=()):
    """sokod with agents A1-A3 (A1 funded 1000.00), terminals T1-T3;
    limits: sokoctl "limit set" argument lists, set before the start."""
    s = PosSokod(build)
    for args in limits:
        s.ctl("limit", "set", *args)
    s.ctl("account", "create", "clearing:mpesa", "provider_clearing", "KES")
    for a in ("A1", "A2", "A3"):
        s.ctl("account", "create", "agent:%s:float" % a, "agent_float", "KES")
        s.ctl("agent", "create", a, "agent:%s:float" % a)
    keys = {"T1": s.terminal_add("T1", "A1"),
            "T2": s.terminal_add("T2", "A2"),
            "T3": s.terminal_add("T3", "A3")}
    s.start()
    st, _, data = s.move("fund-A1", {"type": "float_topup", "currency": "KES",
                                     "amount": "1000.00",
                                     "debit": "clearing:mpesa",
                                     "credit": "agent:A1:float"})
    assert st == 201, data
    return s, keys


def t_pos_transfer_duplicate_status(build):
    s, keys = setup(build)
    try:
        listing = s.ctl("terminal", "list").stdout
        assert "T1" in listing and "key" not in listing, listing
        for k in keys.values():
            assert k.hex() not in listing
        t = s.term("T1", keys["T1"])
        typ, body, _, _ = t.login()
        assert typ == LOGIN_OK, (hex(typ), body)
        assert body[7] == 8 and body[5] == 4096, body
        typ, body = t.request(ECHO, {1: 1})
        assert typ == ECHO | RESP and body[1] > 0, body

        txn = os.urandom(16)
        typ, r1 = t.transfer(txn, 30000, "A2")
        assert typ == FLOAT_TRANSFER | RESP and r1[1] == APPROVED, r1
        assert r1[2] == txn and r1[3].startswith("FT-"), r1
        # the same txn id again: DUPLICATE, the original result, no move
        typ, r2 = t.transfer(txn, 30000, "A2")
        assert r2[1] == DUPLICATE and r2[7] == APPROVED, r2
        assert r2[3] == r1[3], (r1, r2)
        assert s.balance("agent:A1:float") == "700.00"
        assert s.balance("agent:A2:float") == "300.00"
        # same txn id, different amount: reused, nothing done
        typ, r3 = t.transfer(txn, 30001, "A2")
        assert r3[1] == TXN_ID_REUSED, r3
        # insufficient float (A1 has 700.00)
        typ, r4 = t.transfer(os.urandom(16), 10000000, "A2")
        assert r4[1] == INSUFFICIENT_FLOAT, r4
        typ, r5 = t.transfer(os.urandom(16), 100, "nobody")
        assert r5[1] == UNKNOWN_AGENT, r5
        # STATUS of a known and an unknown txn id
        typ, st1 = t.request(STATUS, {1: txn})
        assert typ == STATUS | RESP and st1[1] == APPROVED, st1
        assert st1[9] == 30000 and st1[10] == KES and st1[8] == 0x13, st1
        typ, st2 = t.request(STATUS, {1: os.urandom(16)})
        assert st2[1] == UNKNOWN_TXN, st2
        # no provider configured: CASH_IN is refused as such (nothing
        # stored), the session goes on
        typ, r6 = t.request(CASH_IN, {1: os.urandom(16), 2: 1, 3: KES,
                                      4: "254700000001", 5: "mpesa"})
        assert typ == CASH_IN | RESP and r6[1] == 25, r6  # UNKNOWN_PROVIDER
        # a type this server does not know: refused, the session goes on
        typ, r7 = t.request(0x0050, {1: 1})
        assert typ == FAIL and r7[1] == UNSUPPORTED_TYPE, (hex(typ), r7)
        typ, body = t.request(ECHO, {1: 2})
        assert typ == ECHO | RESP
        t.close()
        # a resend after reconnecting is still a duplicate
        t = s.term("T1", keys["T1"])
        assert t.login()[0] == LOGIN_OK
        typ, r7 = t.transfer(txn, 30000, "A2")
        assert r7[1] == DUPLICATE and r7[7] == APPROVED, r7
        t.close()
        assert s.balance("agent:A1:float") == "700.00"
        s.ctl("verify")
    finally:
        s.stop()


def t_pos_login_refusals(build):
    s, keys = setup(build)
    try:
        # wrong key and unknown terminal: the same AUTH_FAILED, zero MAC
        for tid, kt in (("T1", os.urandom(32)), ("T9", keys["T1"])):
            t = s.term(tid, kt)
            typ, body, m, _ = t.login()
            assert typ == LOGIN_FAIL and body[1] == AUTH_FAILED, body
            assert m == ZERO_MAC
            t.expect_closed()
        # blocked terminal: BLOCKED, MAC'd with K_t; unblocked logs in
        s.ctl("terminal", "block", "T2")
        assert "blocked" in s.ctl("terminal", "list").stdout
        t = s.term("T2", keys["T2"])
        typ, body, m, auth = t.login()
        assert typ == LOGIN_FAIL and body[1] == BLOCKED, body
        assert m == mac(keys["T2"], auth)
        t.expect_closed()
        s.ctl("terminal", "unblock", "T2")
        t = s.term("T2", keys["T2"])
        assert t.login()[0] == LOGIN_OK
        t.close()
        # a request before login
        t = s.term("T1", keys["T1"])
        t.send_raw(frame(ECHO, 5, 1, {1: 1}, None))
        typ, rid, _, body, _, _ = t.read_frame()
        assert typ == ECHO | FAIL and body[1] == NOT_LOGGED_IN, body
        t.expect_closed()
        err = s.stderr_text()
        for k in keys.values():
            assert k.hex() not in err, "a terminal key in the log"
    finally:
        s.stop()


def t_pos_bad_frames(build):
    s, keys = setup(build)
    try:
        # a flipped bit: BAD_MAC, then closed
        t = s.term("T1", keys["T1"])
        assert t.login()[0] == LOGIN_OK
        typ, body = t.request(ECHO, {1: 1}, corrupt=True)
        assert typ == ECHO | FAIL and body[1] == BAD_MAC, body
        t.expect_closed()
        # a replayed counter: BAD_COUNTER, then closed
        t = s.term("T1", keys["T1"])
        assert t.login()[0] == LOGIN_OK
        t.request(ECHO, {1: 1})
        typ, body = t.request(ECHO, {1: 1}, counter=1)
        assert typ == ECHO | FAIL and body[1] == BAD_COUNTER, body
        t.expect_closed()
        # oversized length: refused at once, closed
        t = s.term("T1", keys["T1"])
        t.send_raw(b"\xff\xff\x01\x00")
        typ, rid, _, body, _, _ = t.read_frame()
        assert typ == FAIL and body[1] == MALFORMED, body
        t.expect_closed()
        # garbage bytes: closed without a crash
        for junk in (os.urandom(600), b"\x00\x00", b"GET / HTTP/1.0\r\n\r\n"):
            t = s.term("T1", keys["T1"])
            t.send_raw(junk)
            t.expect_closed()
        # the server still serves
        t = s.term("T1", keys["T1"])
        assert t.login()[0] == LOGIN_OK
        typ, r = t.transfer(os.urandom(16), 100, "A2")
        assert r[1] == APPROVED, r
        # GET /metrics counts it all (docs/operations.md §Metrics)
        m = pos_metrics(s)
        assert m['soko_pos_answers_total{code="bad_mac"}'] == 1, m
        assert m['soko_pos_answers_total{code="bad_counter"}'] == 1, m
        # the oversized length, the HTTP request (random junk may be too)
        assert m['soko_pos_answers_total{code="malformed"}'] >= 2, m
        assert m['soko_pos_answers_total{code="approved"}'] == 1, m
        assert m["soko_pos_logins_total"] == 3, m
        assert m["soko_pos_connections"] == 1, m
        # LOGIN_OK and ECHO_RESP carry no code: timed, not counted by code
        assert m["soko_pos_request_seconds_count"] >= 10, m
        assert m['soko_pos_request_seconds_bucket{le="+Inf"}'] == \
            m["soko_pos_request_seconds_count"], m
        t.close()
        s.ctl("verify")
    finally:
        s.stop()


def pos_metrics(s):
    """The soko_pos_* series of GET /metrics, by name with labels."""
    st, _, data = s.request("GET", "/metrics", auth=False)
    assert st == 200, st
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in data.decode().splitlines()
            if line.startswith("soko_pos_")}


def t_pos_reversal(build):
    """REVERSAL (§9.3): void, repeat, tombstone, late original."""
    s, keys = setup(build)
    try:
        t = s.term("T1", keys["T1"])
        assert t.login()[0] == LOGIN_OK
        # approve, then void: the money goes back, STATUS says REVERSED
        txn = os.urandom(16)
        _, r = t.transfer(txn, 20000, "A2")
        assert r[1] == APPROVED, r
        assert s.balance("agent:A1:float") == "800.00"
        typ, v1 = t.request(REVERSAL, {1: txn, 2: 2})
        assert typ == REVERSAL | RESP and v1[1] == APPROVED, v1
        assert v1[2] == txn and v1[3].startswith("RV-"), v1
        assert s.balance("agent:A1:float") == "1000.00"
        assert s.balance("agent:A2:float") == "0.00"
        # a duplicate reversal: APPROVED again, one effect
        _, v2 = t.request(REVERSAL, {1: txn})
        assert v2[1] == APPROVED and v2[3] == v1[3], (v1, v2)
        assert s.balance("agent:A1:float") == "1000.00"
        _, st = t.request(STATUS, {1: txn})
        assert st[1] == REVERSED and st[9] == 20000, st
        # the original resent after its reversal: DUPLICATE, REVERSED
        _, r2 = t.transfer(txn, 20000, "A2")
        assert r2[1] == DUPLICATE and r2[7] == REVERSED, r2
        assert s.balance("agent:A1:float") == "1000.00"
        # tombstone: void a txn id never seen, then the late original
        late = os.urandom(16)
        _, v3 = t.request(REVERSAL, {1: late, 2: 1})
        assert v3[1] == APPROVED, v3
        _, v4 = t.request(REVERSAL, {1: late})
        assert v4[1] == APPROVED, v4
        _, r3 = t.transfer(late, 5000, "A2")
        assert r3[1] == DUPLICATE and r3[7] == REVERSED, r3
        _, st = t.request(STATUS, {1: late})
        assert st[1] == REVERSED, st
        assert s.balance("agent:A1:float") == "1000.00"
        # ... also when it arrives as an advice
        typ, ab = t.request(ADVICE_BATCH, {1: [
            {1: late, 2: FLOAT_TRANSFER, 3: 5000, 4: KES, 5: 1,
             10: "A2"}]})
        assert ab[2][0][1] == DUPLICATE and ab[2][0][5] == REVERSED, ab
        # a tombstone is per terminal: T2 may use the same txn id
        t2 = s.term("T2", keys["T2"])
        assert t2.login()[0] == LOGIN_OK
        _, st = t2.request(STATUS, {1: late})
        assert st[1] == UNKNOWN_TXN, st
        t2.close()
        # a declined original moved nothing: voiding it is APPROVED
        dec = os.urandom(16)
        _, r4 = t.transfer(dec, 10 ** 9, "A2")
        assert r4[1] == INSUFFICIENT_FLOAT, r4
        _, v5 = t.request(REVERSAL, {1: dec})
        assert v5[1] == APPROVED, v5
        # the receiver spent the float: NOT_REVERSIBLE, nothing moves
        spent = os.urandom(16)
        _, r5 = t.transfer(spent, 10000, "A2")
        assert r5[1] == APPROVED, r5
        t2 = s.term("T2", keys["T2"])
        assert t2.login()[0] == LOGIN_OK
        _, r6 = t2.transfer(os.urandom(16), 10000, "A3")
        assert r6[1] == APPROVED, r6
        t2.close()
        _, v6 = t.request(REVERSAL, {1: spent})
        assert v6[1] == NOT_REVERSIBLE, v6
        _, v7 = t.request(REVERSAL, {1: spent})
        assert v7[1] == NOT_REVERSIBLE, v7
        assert s.balance("agent:A2:float") == "0.00"
        # an advice of type REVERSAL (not an advisable type): DECLINED
        _, ab = t.request(ADVICE_BATCH, {1: [
            {1: txn, 2: REVERSAL, 3: 1, 4: KES, 5: 1}]})
        assert ab[2][0][1] == DECLINED, ab
        assert s.balance("agent:A1:float") == "900.00"
        t.close()
        s.ctl("verify")
    finally:
        s.stop()


def t_pos_advice_batch(build):
    """ADVICE_BATCH (§6.15, §9.4): one result per item, idempotent."""
    s, keys = setup(build, limits=[("terminal", "T1", "KES",
                                    "--per-txn", "500.00")])
    try:
        t = s.term("T1", keys["T1"])
        assert t.login()[0] == LOGIN_OK
        online = os.urandom(16)
        _, r = t.transfer(online, 1000, "A2")
        assert r[1] == APPROVED, r
        ids = [os.urandom(16) for _ in range(4)]

        def ft(i, amount, to="A2"):
            return {1: i, 2: FLOAT_TRANSFER, 3: amount, 4: KES,
                    5: 1735689600000, 10: to}
        items = [
            ft(ids[0], 2000),                    # STORED
            ft(ids[1], 3000),                    # STORED
            ft(ids[0], 2000),                    # same batch: DUPLICATE
            ft(online, 1000),                    # online before: DUPLICATE
            ft(online, 1001),                    # TXN_ID_REUSED
            ft(ids[2], 60000),                   # LIMIT_EXCEEDED (500.00)
            ft(ids[3], 100, "nobody"),           # UNKNOWN_AGENT
            ft(os.urandom(16), 0),               # AMOUNT_INVALID
            {1: os.urandom(16), 2: 0x0021, 3: 100, 4: 566, 5: 1,
             8: "BIL112:UB157", 9: "4506"},      # no bills: UNKNOWN_BILLER
            {1: os.urandom(16), 2: COLLECT, 3: 100, 4: KES, 5: 1},
            {1: os.urandom(16), 2: CASH_IN, 3: 100, 4: KES, 5: 1,
             6: "254700000001"},                 # DECLINED (§6.15)
        ]
        typ, ab = t.request(ADVICE_BATCH, {1: items})
        assert typ == ADVICE_BATCH | RESP and ab[1] == APPROVED, ab
        res = ab[2]
        assert len(res) == len(items), res
        for i, it in enumerate(items):
            assert res[i][2] == it[1], (i, res[i])
        codes = [x[1] for x in res]
        assert codes == [STORED, STORED, DUPLICATE, DUPLICATE,
                         TXN_ID_REUSED, LIMIT_EXCEEDED, UNKNOWN_AGENT,
                         AMOUNT_INVALID, 14, DECLINED, DECLINED], codes
        assert res[2][5] == STORED and res[3][5] == APPROVED, res
        assert res[0][3].startswith("FT-") and res[2][3] == res[0][3], res
        assert s.balance("agent:A1:float") == "940.00"
        # the same batch again: every stored item is a DUPLICATE now
        _, ab2 = t.request(ADVICE_BATCH, {1: items[:2]})
        assert [x[1] for x in ab2[2]] == [DUPLICATE, DUPLICATE], ab2
        assert [x[5] for x in ab2[2]] == [STORED, STORED], ab2
        assert s.balance("agent:A1:float") == "940.00"
        # STATUS of an advice: STORED; an online resend: DUPLICATE
        _, st = t.request(STATUS, {1: ids[0]})
        assert st[1] == STORED and st[9] == 2000, st
        _, r = t.transfer(ids[1], 3000, "A2")
        assert r[1] == DUPLICATE and r[7] == STORED, r
        # the online limit holds too
        _, r = t.transfer(os.urandom(16), 50001, "A2")
        assert r[1] == LIMIT_EXCEEDED, r
        # an empty batch is answered (no item, no commit)
        _, ab3 = t.request(ADVICE_BATCH, {1: []})
        assert ab3[1] == APPROVED and ab3[2] == [], ab3
        t.close()
        s.ctl("verify")
    finally:
        s.stop()


def t_pos_eod_receipt(build):
    """EOD_TOTALS (§6.16) and RECEIPT (§6.14)."""
    s, keys = setup(build)
    try:
        t = s.term("T1", keys["T1"])
        assert t.login()[0] == LOGIN_OK
        a, b, c = os.urandom(16), os.urandom(16), os.urandom(16)
        assert t.transfer(a, 10000, "A2")[1][1] == APPROVED
        assert t.transfer(b, 2500, "A3")[1][1] == APPROVED
        assert t.transfer(c, 700, "A2")[1][1] == APPROVED
        assert t.request(REVERSAL, {1: c})[1][1] == APPROVED
        assert t.transfer(os.urandom(16), 10 ** 9, "A2")[1][1] == \
            INSUFFICIENT_FLOAT
        _, ab = t.request(ADVICE_BATCH, {1: [
            {1: os.urandom(16), 2: FLOAT_TRANSFER, 3: 400, 4: KES, 5: 1,
             10: "A2"}]})
        assert ab[2][0][1] == STORED, ab
        # approved + stored, not the reversed or the declined one
        mine = [{1: FLOAT_TRANSFER, 2: KES, 3: 3, 4: 12900}]
        typ, e1 = t.request(EOD_TOTALS, {1: 1, 2: 1, 3: mine})
        assert typ == EOD_TOTALS | RESP, (hex(typ), e1)
        assert e1[1] == APPROVED and e1[2] == 1, e1
        assert e1[3] == mine, e1
        # the same close again: the same answer
        _, e2 = t.request(EOD_TOTALS, {1: 1, 2: 1, 3: mine})
        assert e2 == e1, (e1, e2)
        # batch 2: only what came after the close
        assert t.transfer(os.urandom(16), 100, "A2")[1][1] == APPROVED
        wrong = [{1: FLOAT_TRANSFER, 2: KES, 3: 2, 4: 200}]
        _, e3 = t.request(EOD_TOTALS, {1: 2, 2: 2, 3: wrong})
        assert e3[1] == TOTALS_MISMATCH, e3
        assert e3[3] == [{1: FLOAT_TRANSFER, 2: KES, 3: 1, 4: 100}], e3
        # an empty batch closes with no lines
        _, e4 = t.request(EOD_TOTALS, {1: 3, 2: 3, 3: []})
        assert e4[1] == APPROVED and e4[3] == [], e4
        # RECEIPT of a known, a reversed and an unknown txn id
        typ, rc = t.request(RECEIPT, {1: a})
        assert typ == RECEIPT | RESP and rc[1] == APPROVED, rc
        assert rc[8] == FLOAT_TRANSFER and rc[9] == 10000, rc
        assert rc[10] == KES and rc[12] == "A2", rc
        assert rc[3].startswith("FT-") and "100.00" in rc[13], rc
        assert "REPRINT" in rc[13], rc
        _, rc = t.request(RECEIPT, {1: c})
        assert rc[1] == REVERSED and rc[9] == 700, rc
        _, rc = t.request(RECEIPT, {1: os.urandom(16)})
        assert rc[1] == UNKNOWN_TXN and 9 not in rc, rc
        t.close()
        # another terminal sees none of T1's
        t = s.term("T2", keys["T2"])
        assert t.login()[0] == LOGIN_OK
        _, rc = t.request(RECEIPT, {1: a})
        assert rc[1] == UNKNOWN_TXN, rc
        _, e5 = t.request(EOD_TOTALS, {1: 1, 2: 1, 3: []})
        assert e5[1] == APPROVED and e5[3] == [], e5
        t.close()
        s.ctl("verify")
    finally:
        s.stop()


def t_pos_rekey(build):
    """sokoctl terminal rekey: a new K_t printed once; the old key is
    refused at the next login (AUTH_FAILED), the new one logs in, and the
    terminal's history stays (a transfer made before is DUPLICATE and
    STATUS finds it); an unknown terminal and a missing KEK refused."""
    s, keys = setup(build)
    try:
        t = s.term("T1", keys["T1"])
        assert t.login()[0] == LOGIN_OK
        txn = os.urandom(16)
        _, r = t.transfer(txn, 500, "A2")
        assert r[1] == APPROVED, r
        t.close()
        out = s.ctl("-o", "pos_kek_file=" + s.kek, "terminal", "rekey",
                    "T1").stdout
        new = bytes.fromhex([p for p in out.split()
                             if p.startswith("key=")][0][4:])
        assert new != keys["T1"] and len(new) == 32, out
        assert new.hex() not in s.ctl("terminal", "list").stdout
        t = s.term("T1", keys["T1"])
        typ, body, _, _ = t.login()
        assert typ == LOGIN_FAIL and body[1] == AUTH_FAILED, body
        t.expect_closed()
        t = s.term("T1", new)
        assert t.login()[0] == LOGIN_OK
        _, d = t.transfer(txn, 500, "A2")
        assert d[1] == DUPLICATE and d[7] == APPROVED, d
        _, st = t.request(STATUS, {1: txn})
        assert st[1] == APPROVED, st
        t.close()
        r = s.ctl("-o", "pos_kek_file=" + s.kek, "terminal", "rekey",
                  "T-nope", check=False)
        assert r.returncode != 0 and "no such terminal" in r.stderr, r
        r = s.ctl("terminal", "rekey", "T2", check=False)
        assert r.returncode != 0, r  # no KEK: nothing changed
        t = s.term("T2", keys["T2"])
        assert t.login()[0] == LOGIN_OK
        t.close()
        assert s.balance("agent:A2:float") == "5.00"
    finally:
        s.stop()


def t_pos_agent_block(build):
    """sokoctl agent block: transfers to the agent are refused
    UNKNOWN_AGENT within a second while they keep coming (the agent
    cache's bound, kept by its re-read of agents in use), its terminals'
    next logins get BLOCKED, the sender's float is untouched by the
    refused ones; unblock undoes both."""
    s, keys = setup(build)
    try:
        t1 = s.term("T1", keys["T1"])
        assert t1.login()[0] == LOGIN_OK
        typ, r = t1.transfer(os.urandom(16), 100, "A2")
        assert r[1] == APPROVED, r
        before = s.balance("agent:A1:float")
        s.ctl("agent", "block", "A2")
        assert "(agent blocked)" in s.ctl("terminal", "list").stdout
        t0 = time.monotonic()
        codes = []
        while time.monotonic() - t0 < 3.0:
            typ, r = t1.transfer(os.urandom(16), 100, "A2")
            codes.append(r[1])
            if r[1] == UNKNOWN_AGENT:
                break
            time.sleep(0.05)
        took = time.monotonic() - t0
        assert codes[-1] == UNKNOWN_AGENT, codes
        assert took < 1.5, took  # one second, and the test's own steps
        approved = codes.count(APPROVED)
        assert all(c in (APPROVED, UNKNOWN_AGENT) for c in codes), codes
        # refused ones moved nothing; the ones before the block landed
        assert s.balance("agent:A1:float") == "%.2f" % (
            float(before) - approved * 1.00), (before, approved)
        # and stay refused
        typ, r = t1.transfer(os.urandom(16), 100, "A2")
        assert r[1] == UNKNOWN_AGENT, r
        # A2's terminal: BLOCKED at login, MAC'd with its key
        t2 = s.term("T2", keys["T2"])
        typ, body, m, auth = t2.login()
        assert typ == LOGIN_FAIL and body[1] == BLOCKED, body
        assert m == mac(keys["T2"], auth)
        t2.expect_closed()
        r = s.ctl("agent", "block", "A9", check=False)
        assert r.returncode == 1 and "no such agent" in r.stderr, r.stderr
        # unblocked: its terminal logs in, transfers to it pass again
        # (a blocked agent is not cached: the next one reads it)
        s.ctl("agent", "unblock", "A2")
        typ, r = t1.transfer(os.urandom(16), 100, "A2")
        assert r[1] == APPROVED, r
        t2 = s.term("T2", keys["T2"])
        assert t2.login()[0] == LOGIN_OK
        t2.close()
        t1.close()
        s.ctl("verify")
    finally:
        s.stop()


TESTS = [t_pos_transfer_duplicate_status, t_pos_login_refusals, t_pos_rekey,
         t_pos_bad_frames, t_pos_reversal, t_pos_advice_batch,
         t_pos_eod_receipt, t_pos_agent_block]

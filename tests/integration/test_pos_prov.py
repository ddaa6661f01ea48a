"""test_pos_prov.py - the provider-backed POS operations, end to end:
COLLECT, CASH_OUT, CASH_IN, BILL_VALIDATE and BILL_PAY from a terminal
through sokod and soko-sandbox (M-Pesa STK push, MTN MoMo request to pay
and transfer, Flutterwave bills), docs/pos-protocol.md §6.5-6.11 and §12,
docs/payments.md §9a.

Checked: COLLECT_RESP PENDING once the payment is durable, the outcome
pushed as COLLECT_RESULT (APPROVED, CUSTOMER_DECLINED, EXPIRED,
DECLINED) and the agent's float credited only on success; STATUS,
RECEIPT and REVERSAL of these transactions; immediate refusals;
idempotency on (terminal, txn_id) across connections and a sokod kill -9
(the sandbox's ledger holds one charge per txn id, never two);
redelivery of unacknowledged results after a reconnect and after a kill;
sandbox faults on the initiating call; soko-pos scripted mode; `sokoctl
verify` clean.  Bills: BILL_PAY's bounded wait for the token
(pos_bill_wait_ms) and its pushed outcome (COLLECT_RESULT key 9), item
codes alone resolved from the categories, bills paid in cash offline
(ADVICE_BATCH, and soko-pos --offline-floor), EOD totals counting them."""
import os
import socket
import subprocess
import time

from harness import (MOMO_ENV, MOMO_USER, MPESA_ENV, SAN_MARKERS, Sandbox,
                     Sokod, free_port)
from test_pos import (LOGIN_OK, RESP, STATUS, RECEIPT, REVERSAL, CASH_IN,
                      COLLECT, CASH_OUT, APPROVED, DUPLICATE, DECLINED,
                      AMOUNT_INVALID, NOT_REVERSIBLE, TXN_ID_REUSED,
                      UNKNOWN_TXN, KES, ADVICE_BATCH, EOD_TOTALS,
                      RETRY_LATER, LIMIT_EXCEEDED, Term,
                      frame, mac)

PENDING, STORED, CUSTOMER_DECLINED, EXPIRED = 1, 2, 22, 23
INVALID_MSISDN, UNKNOWN_PROVIDER = 24, 25
COLLECT_RESULT, COLLECT_RESULT_ACK = 0x2010, 0xA010
EUR = 978
OK = "254708374149"
CANCELLED = "254700001032"  # sandbox magic: 1032 cancelled by user
DS_TIMEOUT = "254700001037"  # 1037: the customer could not be reached
NO_FUNDS = "254700000001"  # 1: insufficient balance
NEVER = "254700999999"  # never completes
MOMO_OK = "46733123459"
MOMO_REJECTED = "46733123451"  # FAILED APPROVAL_REJECTED
MOMO_DISB_KEY = "b4d0f2a3c5e74f80a9b1c2d3e4f5a6b7"
MOMO_NO_PAYEE = "46733123457"  # transfer FAILED PAYEE_NOT_FOUND
FLW_SECRET = "FLWSECK_TEST-sokosandbox0000000000000000000-X"  # sandbox's
POWER = "BIL112:UB157"  # EKEDC prepaid: biller_code:item_code
METER = "45067198012"
METER_UNKNOWN = "0000000000"   # sandbox magic: unknown customer
METER_REFUSED = "45067199901"  # sandbox magic: the biller refuses
NGN = 566
BILL_VALIDATE, BILL_PAY = 0x0020, 0x0021
INSUFFICIENT_FLOAT, UNKNOWN_BILLER, INVALID_ACCOUNT = 11, 14, 15


class PTerm(Term):
    """A terminal that keeps the server's pushes (req_id 0) apart."""

    def __init__(self, port, tid, kt):
        super().__init__(port, tid, kt)
        self.pushed = []

    def _frame(self):
        t, rid, ctr, body, m, auth = self.read_frame()
        if self.ks is not None and t != LOGIN_OK:
            assert m == mac(self.ks, auth), "MAC"
            assert ctr > self.rx, "server counter not increasing"
            self.rx = ctr
        return t, rid, body

    def request(self, type_, body, counter=None, corrupt=False):
        self.req += 1
        self.send_raw(frame(type_, self.req, self.tx, body, self.ks))
        self.tx += 1
        while True:
            t, rid, rbody = self._frame()
            if rid == 0 and t == COLLECT_RESULT:
                self.pushed.append(rbody)
                continue
            assert rid == self.req, (hex(t), rid, self.req)
            return t, rbody

    def ack(self, txn):
        # a notification's ack: req_id 0, the terminal's next counter
        self.send_raw(frame(COLLECT_RESULT_ACK, 0, self.tx, {1: txn},
                            self.ks))
        self.tx += 1

    def wait_push(self, txn, timeout=20):
        """The COLLECT_RESULT for txn (pushed earlier or within
        timeout), or None."""
        end = time.time() + timeout
        while True:
            for b in self.pushed:
                if b[2] == txn:
                    return b
            left = end - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                t, rid, body = self._frame()
            except socket.timeout:
                return None
            finally:
                self.s.settimeout(10)
            assert rid == 0 and t == COLLECT_RESULT, (hex(t), rid, body)
            self.pushed.append(body)

    def collect(self, txn, amount, msisdn=OK, provider="mpesa",
                currency=KES, type_=COLLECT):
        return self.request(type_, {1: txn, 2: amount, 3: currency,
                                    4: msisdn, 5: provider})


class Env:
    """soko-sandbox, and a sokod with a POS listener and M-Pesa and MoMo
    configured: agent A1 (KES float, terminal T1) and A2 (EUR, T2)."""

    def __init__(self, build, deadline_s=30, timeout_ms=3000, extra=(),
                 bills=False):
        self.build = build
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.sb = Sandbox(build, extra=["--callback-delay-ms", "200"]).start()
        tok = os.urandom(24).hex()
        env = {"SOKO_MPESA_CALLBACK_TOKEN": tok,
               "SOKO_MOMO_CALLBACK_TOKEN": tok[::-1]}
        env.update(MPESA_ENV)
        env.update(MOMO_ENV)
        if bills:
            env["SOKO_FLW_SECRET_KEY"] = FLW_SECRET
        env["SOKO_MOMO_DISBURSEMENT_KEY"] = MOMO_DISB_KEY
        self.s = Sokod(build, env=env)
        self.kek = os.path.join(self.s.dir, "pos.kek")
        with open(self.kek, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(self.kek, 0o600)
        self.pos_port = free_port()
        opts = (("http_listen", "127.0.0.1:%d" % self.port),
                ("pos_listen", "127.0.0.1:%d" % self.pos_port),
                ("pos_kek_file", self.kek),
                ("prov_ca_file", self.sb.ca),
                ("prov_callback_base_url", self.base),
                ("prov_janitor_ms", "50"),
                ("prov_first_check_ms", "1000"),
                ("prov_check_every_ms", "300"),
                ("prov_max_checks", "30"),
                ("prov_deadline_s", str(deadline_s)),
                ("prov_timeout_ms", str(timeout_ms)),
                ("prov_lease_ms", "5000"),
                ("mpesa_base_url", self.sb.base),
                ("momo_base_url", self.sb.base),
                ("momo_api_user", MOMO_USER)) + tuple(extra)
        if bills:
            opts += (("bills_flw_base_url", self.sb.base),
                     ("prov_first_check_ms", "200"))
        for k, v in opts:
            self.s.extra += ["-o", "%s=%s" % (k, v)]
        for a in (("clearing:mpesa", "provider_clearing", "KES"),
                  ("clearing:momo", "provider_clearing", "EUR"),
                  ("hold:momo", "suspense", "EUR", "--floor", "0"),
                  ("agent:A1:float", "agent_float", "KES", "--floor", "0"),
                  ("agent:A2:float", "agent_float", "EUR", "--floor", "0")):
            self.s.ctl("account", "create", *a)
        if bills:
            for a in (("suspense:bills", "suspense", "NGN", "--floor", "0"),
                      ("biller:flutterwave", "biller_payable", "NGN"),
                      ("clearing:topup", "provider_clearing", "NGN"),
                      ("agent:A3:float", "agent_float", "NGN", "--floor",
                       "0")):
                self.s.ctl("account", "create", *a)
        self.s.ctl("agent", "create", "A1", "agent:A1:float")
        self.s.ctl("agent", "create", "A2", "agent:A2:float")
        self.keys = {"T1": self.terminal_add("T1", "A1"),
                     "T2": self.terminal_add("T2", "A2")}
        if bills:
            self.s.ctl("agent", "create", "A3", "agent:A3:float")
            self.keys["T3"] = self.terminal_add("T3", "A3")
        self.s.start()
        if bills:
            st, _, data = self.s.request(
                "POST", "/v1/movements",
                {"type": "float_topup", "amount": "10000.00",
                 "currency": "NGN", "debit": "clearing:topup",
                 "credit": "agent:A3:float"},
                headers={"Idempotency-Key": "topup-A3"})
            assert st == 201, (st, data)

    def terminal_add(self, tid, agent):
        out = self.s.ctl("-o", "pos_kek_file=" + self.kek, "terminal",
                         "add", tid, agent).stdout
        return bytes.fromhex([p for p in out.split()
                              if p.startswith("key=")][0][4:])

    def term(self, tid="T1"):
        t = PTerm(self.pos_port, tid, self.keys[tid])
        typ, body, _, _ = t.login()
        assert typ == LOGIN_OK, (hex(typ), body)
        return t

    def restart(self):
        self.s.kill9()
        self.s.start()

    def payment(self, ref):
        st, _, data = self.s.request("GET", "/v1/payments/" + ref)
        assert st == 200, (st, data)
        import json
        return json.loads(data)

    def charges(self, msisdn=None):
        return [c for c in self.sb.ledger()["charges"]
                if msisdn is None or c["msisdn"] == msisdn]

    def verify(self):
        r = self.s.ctl("verify", check=False)
        assert r.returncode == 0, r.stdout + r.stderr

    def stop(self):
        try:
            self.s.stop()
        finally:
            self.sb.stop()


def t_pos_collect_flow(build):
    e = Env(build)
    try:
        t = e.term()
        txn = os.urandom(16)
        typ, r = t.collect(txn, 15000)
        assert typ == COLLECT | RESP and r[1] == PENDING, r
        assert r[2] == txn and r[3].startswith("CO-"), r
        # pending: STATUS says so, nothing credited yet
        _, st = t.request(STATUS, {1: txn})
        assert st[1] == PENDING and st[8] == COLLECT and st[9] == 15000, st
        res = t.wait_push(txn)
        assert res is not None, "no COLLECT_RESULT"
        assert res[1] == APPROVED and res[3] == r[3], res
        assert res.get(8), res  # the M-Pesa receipt
        t.ack(txn)
        assert e.s.balance("agent:A1:float") == "150.00"
        _, st = t.request(STATUS, {1: txn})
        assert st[1] == APPROVED and st[3] == r[3] and st[10] == KES, st
        _, rc = t.request(RECEIPT, {1: txn})
        assert rc[1] == APPROVED and "COLLECT" in rc[13], rc
        assert "***149" in rc[13] and res[8] in rc[13], rc
        assert OK not in rc[13], "the full MSISDN on a receipt"
        # the txn id is the collection's for good: a float transfer
        # under it, online or advised, is TXN_ID_REUSED and moves nothing
        _, x = t.transfer(txn, 100, "A2")
        assert x[1] == TXN_ID_REUSED, x
        _, ab = t.request(ADVICE_BATCH, {1: [
            {1: txn, 2: 0x13, 3: 100, 4: KES, 5: 1, 10: "A2"}]})
        assert ab[2][0][1] == TXN_ID_REUSED, ab
        # a resend: DUPLICATE with the original outcome, no second push
        _, d = t.collect(txn, 15000)
        assert d[1] == DUPLICATE and d[7] == APPROVED and d[3] == r[3], d
        # the same txn id with other content
        _, d2 = t.collect(txn, 16000)
        assert d2[1] == TXN_ID_REUSED, d2
        # completed: not reversible, nothing moves
        _, v = t.request(REVERSAL, {1: txn})
        assert v[1] == NOT_REVERSIBLE, v
        assert e.s.balance("agent:A1:float") == "150.00"
        # one charge at the provider for this txn id
        assert len(e.charges(OK)) == 1, e.charges(OK)
        # the API shows the payment, credited to the agent's float
        p = e.payment("pos:T1:" + __import__("base64").urlsafe_b64encode(
            txn).decode().rstrip("="))
        assert p["state"] == "succeeded" and p["kind"] == "collection", p
        t.close()
        e.verify()
    finally:
        e.stop()


def t_pos_collect_declines(build):
    e = Env(build)
    try:
        t = e.term()
        cases = [(CANCELLED, CUSTOMER_DECLINED), (DS_TIMEOUT, EXPIRED),
                 (NO_FUNDS, DECLINED)]
        txns = []
        for msisdn, _ in cases:
            txn = os.urandom(16)
            _, r = t.collect(txn, 5000, msisdn=msisdn)
            assert r[1] == PENDING, r
            txns.append(txn)
        for txn, (msisdn, want) in zip(txns, cases):
            res = t.wait_push(txn)
            assert res is not None and res[1] == want, (msisdn, res)
            t.ack(txn)
            _, st = t.request(STATUS, {1: txn})
            assert st[1] == want, (msisdn, st)
            # a failed collection moved nothing: voiding it is APPROVED
            _, v = t.request(REVERSAL, {1: txn})
            assert v[1] == APPROVED, v
        assert e.s.balance("agent:A1:float") == "0.00"
        # refused at once, nothing stored, nothing sent
        for body, want in (
                ({4: "12ab"}, INVALID_MSISDN),
                ({4: "1234"}, INVALID_MSISDN),
                ({5: "nosuch"}, UNKNOWN_PROVIDER),
                ({5: "orange"}, UNKNOWN_PROVIDER),  # not configured
                ({2: 0}, AMOUNT_INVALID)):
            b = {1: os.urandom(16), 2: 100, 3: KES, 4: OK, 5: "mpesa"}
            b.update(body)
            typ, r = t.request(COLLECT, b)
            assert typ == COLLECT | RESP and r[1] == want, (body, r)
            _, st = t.request(STATUS, {1: b[1]})
            assert st[1] == UNKNOWN_TXN, st
        # a KES float cannot take a EUR collection
        _, r = t.collect(os.urandom(16), 100, msisdn=MOMO_OK,
                         provider="momo", currency=EUR)
        assert r[1] == 17, r  # CURRENCY_INVALID
        assert len(e.charges()) == 3, e.charges()
        t.close()
        e.verify()
    finally:
        e.stop()


def t_pos_collect_redelivery(build):
    e = Env(build)
    try:
        t = e.term()
        txn = os.urandom(16)
        _, r = t.collect(txn, 2000)
        assert r[1] == PENDING, r
        t.close()  # gone before the outcome
        ref = "pos:T1:" + __import__("base64").urlsafe_b64encode(
            txn).decode().rstrip("=")
        end = time.time() + 20
        while e.payment(ref)["state"] != "succeeded":
            assert time.time() < end, e.payment(ref)
            time.sleep(0.1)
        # redelivered after the next login, again until acknowledged
        for _ in range(2):
            t = e.term()
            res = t.wait_push(txn, timeout=5)
            assert res is not None and res[1] == APPROVED, res
            t.close()
        t = e.term()
        res = t.wait_push(txn, timeout=5)
        assert res is not None, "not redelivered"
        t.ack(txn)
        time.sleep(0.5)  # the ack is recorded, not answered
        t.close()
        t = e.term()
        assert t.wait_push(txn, timeout=2) is None, t.pushed
        t.close()
        # ... and survives a kill -9: a result pending at the kill (MoMo:
        # a call whose answer the kill loses is resolved by its status)
        t = e.term("T2")
        txn2 = os.urandom(16)
        _, r2 = t.collect(txn2, 3000, msisdn=MOMO_OK, provider="momo",
                          currency=EUR)
        assert r2[1] == PENDING, r2
        t.close()
        e.restart()
        t = e.term("T2")
        res = t.wait_push(txn2, timeout=25)
        assert res is not None and res[1] == APPROVED, res
        # the resend after the restart is a DUPLICATE: one charge
        _, d = t.collect(txn2, 3000, msisdn=MOMO_OK, provider="momo",
                         currency=EUR)
        assert d[1] == DUPLICATE and d[7] == APPROVED, d
        t.close()
        e.restart()  # not acknowledged: redelivered once more
        t = e.term("T2")
        res = t.wait_push(txn2, timeout=5)
        assert res is not None and res[1] == APPROVED, res
        t.ack(txn2)
        t.request(STATUS, {1: txn2})  # the ack is processed before it
        assert e.s.balance("agent:A1:float") == "20.00"
        assert e.s.balance("agent:A2:float") == "30.00"
        assert len(e.charges(OK)) == 1, e.charges(OK)
        assert len([c for c in e.charges(MOMO_OK)
                    if c["state"] == "succeeded"]) == 1, e.charges(MOMO_OK)
        t.close()
        e.verify()
    finally:
        e.stop()


def t_pos_collect_kill_duplicate(build):
    """A COLLECT whose answer is lost in a kill -9 of sokod, resent
    after the restart: the provider is asked at most once (the payment
    row was committed before the answer), the result arrives.  MoMo: a
    kill between the claim and the recorded answer leaves an answer lost
    that its status API resolves (an M-Pesa push there would end
    unknown, for reconciliation: docs/payments.md §1)."""
    e = Env(build)
    try:
        t = e.term("T2")
        txn = os.urandom(16)
        t.req += 1
        t.send_raw(frame(COLLECT, t.req, t.tx,
                         {1: txn, 2: 4000, 3: EUR, 4: MOMO_OK, 5: "momo"},
                         t.ks))
        t.tx += 1
        time.sleep(0.05)
        e.restart()  # the answer may or may not have left
        t.close()
        for _ in range(3):  # resent (same txn id) after the restart
            t = e.term("T2")
            _, r = t.collect(txn, 4000, msisdn=MOMO_OK, provider="momo",
                             currency=EUR)
            assert r[1] in (PENDING, DUPLICATE), r
            t.close()
        t = e.term("T2")
        res = t.wait_push(txn, timeout=25)
        assert res is not None and res[1] == APPROVED, res
        t.ack(txn)
        t.request(STATUS, {1: txn})
        ch = [c for c in e.charges(MOMO_OK) if c["state"] == "succeeded"]
        assert len(ch) == 1, e.charges(MOMO_OK)
        assert e.s.balance("agent:A2:float") == "40.00"
        t.close()
        e.verify()
    finally:
        e.stop()


MOMO_FAULTS = ["delay", "no_callback", "callback_twice",
               "contradicting_callback", "reset_after_commit",
               "error500_after_commit", "timeout", "expired_token"]


def t_pos_collect_faults(build):
    """Every sandbox fault on MoMo's request to pay, one customer each:
    each ends APPROVED with exactly one charge (a lost answer is queried
    by our reference, never re-sent); an M-Pesa push whose answer is lost
    is not queryable and stays PENDING (unknown: reconciliation), never
    declined while charged."""
    e = Env(build, deadline_s=20, timeout_ms=1500)
    try:
        rules = []
        for i, fault in enumerate(MOMO_FAULTS):
            r = {"provider": "momo", "op": "*" if fault == "expired_token"
                 else "requesttopay", "fault": fault, "rate": 1.0,
                 "count": 1, "msisdn": "4673312%04d" % (7000 + i)}
            if fault == "delay":
                r["ms"] = 300
            rules.append(r)
        rules.append({"provider": "mpesa", "op": "stkpush",
                      "fault": "reset_after_commit", "rate": 1.0,
                      "count": 1, "msisdn": "254708374160"})
        e.sb.faults(rules)
        t = e.term("T2")
        txns = []
        for i, fault in enumerate(MOMO_FAULTS):
            txn = os.urandom(16)
            _, r = t.collect(txn, 2550, msisdn="4673312%04d" % (7000 + i),
                             provider="momo", currency=EUR)
            assert r[1] == PENDING, (fault, r)
            txns.append(txn)
        _, r = t.collect(os.urandom(16), 100, msisdn=MOMO_REJECTED,
                         provider="momo", currency=EUR)
        rej = r[2]
        for fault, txn in zip(MOMO_FAULTS, txns):
            res = t.wait_push(txn, timeout=25)
            assert res is not None and res[1] == APPROVED, (fault, res)
            t.ack(txn)
        res = t.wait_push(rej, timeout=25)
        assert res is not None and res[1] == CUSTOMER_DECLINED, res
        for i, fault in enumerate(MOMO_FAULTS):
            ch = [c for c in e.charges("4673312%04d" % (7000 + i))
                  if c["state"] == "succeeded"]
            assert len(ch) == 1, (fault, ch)
        assert e.s.balance("agent:A2:float") == "%.2f" % (
            25.50 * len(MOMO_FAULTS))
        t.close()
        # M-Pesa: the answer of the push is lost
        t1 = e.term("T1")
        lost = os.urandom(16)
        _, r = t1.collect(lost, 700, msisdn="254708374160")
        assert r[1] == PENDING, r
        assert t1.wait_push(lost, timeout=8) is None, t1.pushed
        _, st = t1.request(STATUS, {1: lost})
        assert st[1] == PENDING, st
        assert len(e.charges("254708374160")) == 1
        t1.close()
        e.verify()
    finally:
        e.stop()


def t_pos_cash_out(build):
    """CASH_OUT: the customer's wallet to the agent's float, the outcome
    pushed like a COLLECT's (CW- references); without a provider there
    is no wallet to take it from."""
    e = Env(build)
    try:
        t = e.term("T2")
        txn = os.urandom(16)
        typ, r = t.collect(txn, 1000, msisdn=MOMO_OK, provider="momo",
                           currency=EUR, type_=CASH_OUT)
        assert typ == CASH_OUT | RESP and r[1] == PENDING, r
        assert r[3].startswith("CW-"), r
        res = t.wait_push(txn)
        assert res is not None and res[1] == APPROVED, res
        t.ack(txn)
        _, st = t.request(STATUS, {1: txn})
        assert st[1] == APPROVED and st[8] == CASH_OUT, st
        assert e.s.balance("agent:A2:float") == "10.00"
        typ, r = t.request(CASH_OUT, {1: os.urandom(16), 2: 100, 3: EUR,
                                      4: MOMO_OK})
        assert r[1] == UNKNOWN_PROVIDER, r
        # a cash-out accepted offline is refused: the cash must follow
        # an APPROVED debit; a cash-in too: the wallet credit may fail
        # after the customer left (§6.15)
        typ, ab = t.request(ADVICE_BATCH, {1: [
            {1: os.urandom(16), 2: CASH_OUT, 3: 100, 4: EUR, 5: 1,
             6: MOMO_OK, 7: "momo"},
            {1: os.urandom(16), 2: CASH_IN, 3: 100, 4: EUR, 5: 1,
             6: MOMO_OK, 7: "momo"}]})
        assert [x[1] for x in ab[2]] == [DECLINED, DECLINED], ab
        t.close()
        e.verify()
    finally:
        e.stop()


def t_pos_collect_merchant(build):
    """A merchant's terminal (sokoctl merchant create, terminal add
    --merchant): its COLLECTs credit the merchant's merchant_payable
    account, not the agent's float; its CASH_OUT still the float; a
    collection in another currency than the merchant's account is
    CURRENCY_INVALID; sokoctl refuses a merchant on a non-payable account
    and a terminal of an unknown merchant.  Merchant limits (`limit set
    merchant M1`): its collections count against them when they succeed
    and are refused over them (LIMIT_EXCEEDED, nothing created), the
    cash-outs at its terminal and other terminals' collections do not."""
    e = Env(build)
    try:
        e.s.ctl("account", "create", "merchant:M1:payable",
                "merchant_payable", "KES")
        out = e.s.ctl("merchant", "create", "M1",
                      "merchant:M1:payable").stdout
        assert "merchant M1 payable=merchant:M1:payable" in out, out
        r = e.s.ctl("merchant", "create", "M2", "agent:A1:float",
                    check=False)
        assert r.returncode != 0 and "not a merchant_payable" in r.stderr, r
        r = e.s.ctl("merchant", "create", "M1", "merchant:M1:payable",
                    check=False)
        assert r.returncode != 0 and "already exists" in r.stderr, r
        r = e.s.ctl("-o", "pos_kek_file=" + e.kek, "terminal", "add", "T8",
                    "A1", "--merchant", "NOPE", check=False)
        assert r.returncode != 0 and "no such merchant" in r.stderr, r
        out = e.s.ctl("-o", "pos_kek_file=" + e.kek, "terminal", "add",
                      "T9", "A1", "--merchant", "M1").stdout
        assert " merchant=M1 " in out, out
        e.keys["T9"] = bytes.fromhex([p for p in out.split()
                                      if p.startswith("key=")][0][4:])
        lst = e.s.ctl("terminal", "list").stdout
        assert any(ln.startswith("T9 ") and "merchant=M1" in ln
                   for ln in lst.splitlines()), lst
        t = e.term("T9")
        txn = os.urandom(16)
        typ, r = t.collect(txn, 1200)
        assert typ == COLLECT | RESP and r[1] == PENDING, r
        res = t.wait_push(txn)
        assert res is not None and res[1] == APPROVED, res
        t.ack(txn)
        assert e.s.balance("merchant:M1:payable") == "12.00"
        assert e.s.balance("agent:A1:float") == "0.00"
        _, st = t.request(STATUS, {1: txn})
        assert st[1] == APPROVED and st[8] == COLLECT, st
        # a cash-out at the same terminal: the agent's float
        cw = os.urandom(16)
        _, r = t.collect(cw, 500, type_=CASH_OUT)
        assert r[1] == PENDING, r
        res = t.wait_push(cw)
        assert res is not None and res[1] == APPROVED, res
        t.ack(cw)
        assert e.s.balance("agent:A1:float") == "5.00"
        assert e.s.balance("merchant:M1:payable") == "12.00"
        # the merchant's account is in KES: a EUR collection is refused
        _, r = t.collect(os.urandom(16), 100, msisdn=MOMO_OK,
                         provider="momo", currency=EUR)
        assert r[1] == 17, r  # CURRENCY_INVALID
        # the other terminals of the agent still collect to its float
        t1 = e.term("T1")
        c1 = os.urandom(16)
        _, r = t1.collect(c1, 300)
        res = t1.wait_push(c1)
        assert res is not None and res[1] == APPROVED, res
        t1.ack(c1)
        assert e.s.balance("agent:A1:float") == "8.00"
        # merchant limits (the 12.00 collected before the rule existed
        # are not counted: usage is kept for subjects with a rule)
        e.s.ctl("limit", "set", "merchant", "M1", "KES", "--per-txn",
                "20.00", "--daily", "30.00")
        assert any(ln.split()[:3] == ["merchant", "M1", "KES"] for ln in
                   e.s.ctl("limit", "list").stdout.splitlines())
        time.sleep(1.2)  # the ledger re-reads its rules every second
        _, r = t.collect(os.urandom(16), 2100)  # 21.00 > 20.00
        assert r[1] == LIMIT_EXCEEDED and r[6] == "limit_per_transaction", r
        ok = os.urandom(16)
        _, r = t.collect(ok, 1500)  # 15.00 of 30.00
        assert r[1] == PENDING, r
        res = t.wait_push(ok)
        assert res is not None and res[1] == APPROVED, res
        t.ack(ok)
        _, r = t.collect(os.urandom(16), 1600)  # 15.00 + 16.00 > 30.00
        assert r[1] == LIMIT_EXCEEDED and r[6] == "limit_daily", r
        # neither a cash-out there nor another terminal's collection
        # counts against M1 (nor is refused by it)
        cw = os.urandom(16)
        _, r = t.collect(cw, 500, type_=CASH_OUT)
        assert r[1] == PENDING, r
        assert t.wait_push(cw)[1] == APPROVED
        t.ack(cw)
        c1 = os.urandom(16)
        _, r = t1.collect(c1, 2500)
        assert r[1] == PENDING, r
        assert t1.wait_push(c1)[1] == APPROVED
        t1.ack(c1)
        last = os.urandom(16)
        _, r = t.collect(last, 1500)  # 15.00 + 15.00 <= 30.00
        assert r[1] == PENDING, r
        assert t.wait_push(last)[1] == APPROVED
        t.ack(last)
        assert e.s.balance("merchant:M1:payable") == "42.00"
        t1.close()
        t.close()
        e.verify()
    finally:
        e.stop()


def t_pos_collect_limits(build):
    """Terminal and agent limits on COLLECT and CASH_OUT (docs/payments.md
    §9a): checked when the collection is created (LIMIT_EXCEEDED, nothing
    created, the provider never asked), counted when it succeeds (never
    refused then: the customer has paid); a failed collection uses up
    nothing; a resend of an accepted collection is DUPLICATE, over the
    limit or not."""
    e = Env(build)
    try:
        e.s.ctl("limit", "set", "terminal", "T1", "KES", "--per-txn", "200.00",
                "--daily", "300.00")
        e.s.ctl("limit", "set", "agent", "A2", "EUR", "--daily", "15.00")
        time.sleep(1.2)  # the ledger re-reads its rules every second
        t = e.term()
        _, r = t.collect(os.urandom(16), 20100)  # 201.00 > 200.00
        assert r[1] == LIMIT_EXCEEDED, r
        assert r[6] == "limit_per_transaction", r  # which one (text)
        # a failed collection counts nothing
        bad = os.urandom(16)
        _, r = t.collect(bad, 20000, msisdn=CANCELLED)
        assert r[1] == PENDING, r
        res = t.wait_push(bad)
        assert res is not None and res[1] == CUSTOMER_DECLINED, res
        assert res.get(6), res  # the provider's words
        t.ack(bad)
        # two of 200.00 each pass the check (neither has succeeded yet)
        a, b = os.urandom(16), os.urandom(16)
        _, ra = t.collect(a, 20000)
        _, rb = t.collect(b, 20000)
        assert ra[1] == PENDING and rb[1] == PENDING, (ra, rb)
        for txn in (a, b):
            res = t.wait_push(txn)
            assert res is not None and res[1] == APPROVED, res
            t.ack(txn)
        # both succeeded and were counted (400.00 > 300.00: a success is
        # never refused), so the day is used up for the next one
        assert e.s.balance("agent:A1:float") == "400.00"
        _, r = t.collect(os.urandom(16), 100)
        assert r[1] == LIMIT_EXCEEDED, r
        _, d = t.collect(a, 20000)
        assert d[1] == DUPLICATE and d[7] == APPROVED, d
        # the agent's limit, on a CASH_OUT
        t2 = e.term("T2")
        co = os.urandom(16)
        _, r = t2.collect(co, 1000, msisdn=MOMO_OK, provider="momo",
                          currency=EUR, type_=CASH_OUT)
        assert r[1] == PENDING, r
        res = t2.wait_push(co)
        assert res is not None and res[1] == APPROVED, res
        t2.ack(co)
        _, r = t2.collect(os.urandom(16), 501, msisdn=MOMO_OK,
                          provider="momo", currency=EUR, type_=CASH_OUT)
        assert r[1] == LIMIT_EXCEEDED, r
        _, r = t2.collect(os.urandom(16), 500, msisdn=MOMO_OK,
                          provider="momo", currency=EUR, type_=CASH_OUT)
        assert r[1] == PENDING, r
        # the provider was asked for the accepted ones only
        assert len(e.charges(OK)) == 2, e.charges(OK)
        assert len(e.charges(CANCELLED)) == 1, e.charges(CANCELLED)
        t.close()
        t2.close()
        e.verify()
    finally:
        e.stop()


def t_pos_cash_in(build):
    """CASH_IN: the agent's float to the customer's wallet, a MoMo
    transfer held from the float in the commit that creates it; the
    outcome pushed; a failed transfer gives the float back; a float too
    low creates nothing; a resend is one transfer."""
    e = Env(build)
    try:
        st, _, data = e.s.request(
            "POST", "/v1/movements",
            {"type": "float_topup", "amount": "100.00", "currency": "EUR",
             "debit": "clearing:momo", "credit": "agent:A2:float"},
            headers={"Idempotency-Key": "topup-A2"})
        assert st == 201, (st, data)
        t = e.term("T2")

        def cash_in(txn, amount, msisdn=MOMO_OK, **over):
            b = {1: txn, 2: amount, 3: EUR, 4: msisdn, 5: "momo"}
            b.update(over)
            return t.request(CASH_IN, b)

        txn = os.urandom(16)
        typ, r = cash_in(txn, 3000)
        assert typ == CASH_IN | RESP and r[1] == PENDING, r
        assert r[3].startswith("CI-"), r
        assert e.s.balance("agent:A2:float") == "70.00"  # held at once
        res = t.wait_push(txn)
        assert res is not None and res[1] == APPROVED, res
        t.ack(txn)
        _, d = cash_in(txn, 3000)
        assert d[1] == DUPLICATE and d[7] == APPROVED and d[3] == r[3], d
        _, d = cash_in(txn, 3001)
        assert d[1] == TXN_ID_REUSED, d
        _, st = t.request(STATUS, {1: txn})
        assert st[1] == APPROVED and st[8] == CASH_IN, st
        _, v = t.request(REVERSAL, {1: txn})
        assert v[1] == NOT_REVERSIBLE, v
        # the transfer fails: the hold comes back to the float
        bad = os.urandom(16)
        _, r = cash_in(bad, 1000, msisdn=MOMO_NO_PAYEE)
        assert r[1] == PENDING, r
        res = t.wait_push(bad)
        assert res is not None and res[1] == DECLINED, res
        t.ack(bad)
        assert e.s.balance("agent:A2:float") == "70.00"
        assert e.s.balance("hold:momo") == "0.00"
        # soko-pos scripted mode: a cash-in, its pushed outcome
        r = subprocess.run(
            [os.path.join(build, "soko-pos"), "script", "--server",
             "127.0.0.1:%d" % e.pos_port, "--terminal", "T2", "--key",
             e.keys["T2"].hex(), "--queue",
             os.path.join(e.s.dir, "q2.db"), "--timeout", "30"],
            input="cash_in %s momo 5.00 EUR\nwait\n" % MOMO_OK,
            capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "op=cash_in" in r.stdout and "code=APPROVED" in r.stdout, \
            r.stdout
        assert e.s.balance("agent:A2:float") == "65.00"
        # refused by the float: nothing created, the same answer again
        big = os.urandom(16)
        for _ in range(2):
            _, r = cash_in(big, 10 ** 6)
            assert r[1] == INSUFFICIENT_FLOAT, r
        _, r = t.request(CASH_IN, {1: os.urandom(16), 2: 100, 3: EUR,
                                   4: MOMO_OK})  # no provider
        assert r[1] == UNKNOWN_PROVIDER, r
        # M-Pesa B2C is not configured here (no initiator)
        _, r = t.request(CASH_IN, {1: os.urandom(16), 2: 100, 3: KES,
                                   4: OK, 5: "mpesa"})
        assert r[1] == UNKNOWN_PROVIDER, r
        transfers = [c for c in e.sb.ledger()["charges"]
                     if c["msisdn"] == MOMO_OK]
        assert len(transfers) == 2, transfers  # T2's and soko-pos's
        t.close()
        e.verify()
    finally:
        e.stop()


def t_pos_collect_soko_pos(build):
    """soko-pos scripted mode: COLLECT answered PENDING, then the pushed
    outcome finishes the queue entry."""
    e = Env(build)
    try:
        qdir = e.s.dir
        script = ("collect %s mpesa 12.00 KES\nwait\n"
                  "collect %s mpesa 3.00 KES\nwait\nstatus last\nwait\n"
                  % (OK, CANCELLED))
        r = subprocess.run(
            [os.path.join(build, "soko-pos"), "script", "--server",
             "127.0.0.1:%d" % e.pos_port, "--terminal", "T1", "--key",
             e.keys["T1"].hex(), "--queue", os.path.join(qdir, "q.db"),
             "--timeout", "30"], input=script, capture_output=True,
            text=True, timeout=120)
        for m in SAN_MARKERS:
            assert m not in r.stderr, r.stderr
        out = r.stdout
        assert r.returncode == 0, out + r.stderr
        assert "op=collect" in out and "code=PENDING" in out, out
        assert "code=APPROVED" in out, out
        assert "code=CUSTOMER_DECLINED" in out, out
        assert 'why="' in out, out  # the provider's words, shown
        assert "queue open=0" in out, out
        assert e.s.balance("agent:A1:float") == "12.00"
        # interactive mode: menu 6 (collect), then quit
        r = subprocess.run(
            [os.path.join(build, "soko-pos"), "interactive", "--server",
             "127.0.0.1:%d" % e.pos_port, "--terminal", "T1", "--key",
             e.keys["T1"].hex(), "--queue", os.path.join(qdir, "q.db")],
            input="6\n%s\nmpesa\n4.00\nKES\n5\n" % OK,
            capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "6 collect" in r.stdout and "APPROVED" in r.stdout, r.stdout
        assert "from %s via mpesa KES 4.00" % OK in r.stdout, r.stdout
        assert e.s.balance("agent:A1:float") == "16.00"
        e.verify()
    finally:
        e.stop()


def t_pos_bills(build):
    """BILL_VALIDATE through Flutterwave; BILL_PAY funded from the
    agent's NGN float (held at once), PENDING, then STATUS and RECEIPT
    show the token; a biller refusal refunds the float; a float too low
    is INSUFFICIENT_FLOAT and a terminal limit LIMIT_EXCEEDED, moving
    nothing.  No bounded wait here
    (pos_bill_wait_ms 0): t_pos_bill_advice has it."""
    e = Env(build, bills=True, extra=(("pos_bill_wait_ms", "0"),))
    try:
        t = e.term("T3")
        typ, v = t.request(BILL_VALIDATE, {1: POWER, 2: METER})
        assert typ == BILL_VALIDATE | RESP and v[1] == APPROVED, v
        assert v[2] == "JOHN DOE", v
        for body, want in (({1: POWER, 2: METER_UNKNOWN}, INVALID_ACCOUNT),
                           ({1: "BIL112", 2: METER}, UNKNOWN_BILLER),
                           ({1: "UB999", 2: METER}, UNKNOWN_BILLER),
                           ({1: "BIL112:", 2: METER}, UNKNOWN_BILLER),
                           ({1: "BIL1:UB1/x", 2: METER}, UNKNOWN_BILLER),
                           ({1: POWER, 2: "a b"}, INVALID_ACCOUNT)):
            _, v = t.request(BILL_VALIDATE, body)
            assert v[1] == want, (body, v)
        # the item code alone: its biller from the categories
        _, v = t.request(BILL_VALIDATE, {1: "UB157", 2: METER})
        assert v[1] == APPROVED and v[2] == "JOHN DOE", v

        def pay(txn, amount, meter=METER, currency=NGN):
            return t.request(BILL_PAY, {1: txn, 2: amount, 3: currency,
                                        4: POWER, 5: meter})

        txn = os.urandom(16)
        typ, r = pay(txn, 150000)
        assert typ == BILL_PAY | RESP and r[1] == PENDING, r
        assert r[3].startswith("BP-"), r
        assert e.s.balance("agent:A3:float") == "8500.00"  # held
        end = time.time() + 20
        while True:
            _, st = t.request(STATUS, {1: txn})
            if st[1] != PENDING or time.time() > end:
                break
            time.sleep(0.2)
        assert st[1] == APPROVED and st[8] == BILL_PAY, st
        assert st.get(11), ("no token", st)
        st_ok, r_ok = st, r
        _, rc = t.request(RECEIPT, {1: txn})
        assert rc[1] == APPROVED and rc[11] == st[11], rc
        assert st[11] in rc[13] and METER in rc[13], rc
        _, d = pay(txn, 150000)
        assert d[1] == DUPLICATE and d[7] == APPROVED, d
        assert d[8] == st[11], d  # the token again
        _, d = pay(txn, 150001)
        assert d[1] == TXN_ID_REUSED, d
        _, vv = t.request(REVERSAL, {1: txn})
        assert vv[1] == NOT_REVERSIBLE, vv
        # the biller refuses: failed, the float refunded
        bad = os.urandom(16)
        _, r = pay(bad, 20000, meter=METER_REFUSED)
        assert r[1] == PENDING, r
        end = time.time() + 20
        while True:
            _, st = t.request(STATUS, {1: bad})
            if st[1] != PENDING or time.time() > end:
                break
            time.sleep(0.2)
        assert st[1] == DECLINED, st
        # refused at once or by the float, nothing moves
        _, r = pay(os.urandom(16), 10 ** 9)
        assert r[1] == INSUFFICIENT_FLOAT, r
        _, r = pay(os.urandom(16), 100, currency=KES)
        assert r[1] == 17, r  # CURRENCY_INVALID
        _, r = pay(os.urandom(16), 0)
        assert r[1] == AMOUNT_INVALID, r
        # the funding counts against the terminal's limit: over it, the
        # bill fails and nothing moves
        e.s.ctl("limit", "set", "terminal", "T3", "NGN", "--per-txn",
                "5000.00")
        time.sleep(1.2)  # the ledger re-reads its rules every second
        _, r = pay(os.urandom(16), 500100)
        assert r[1] == LIMIT_EXCEEDED, r
        assert e.s.balance("agent:A3:float") == "8500.00"
        assert e.s.balance("suspense:bills") == "0.00"
        assert e.s.balance("biller:flutterwave") == "1500.00"
        # the outcomes pushed too (COLLECT_RESULT with the token, key 9)
        res = t.wait_push(txn)
        assert res is not None and res[1] == APPROVED, res
        assert res[9] == st_ok[11] and res[3] == r_ok[3], (res, st_ok)
        t.ack(txn)
        res = t.wait_push(bad)
        assert res is not None and res[1] == DECLINED and 9 not in res, res
        t.ack(bad)
        t.close()
        # soko-pos scripted mode: a validation
        r = subprocess.run(
            [os.path.join(build, "soko-pos"), "script", "--server",
             "127.0.0.1:%d" % e.pos_port, "--terminal", "T3", "--key",
             e.keys["T3"].hex(), "--queue",
             os.path.join(e.s.dir, "q3.db"), "--timeout", "30"],
            input="bill_validate %s %s\nwait\nbill_pay %s %s 10.00 NGN\n"
                  "wait\n" % (POWER, METER, POWER, METER),
            capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "op=bill_validate code=APPROVED" in r.stdout, r.stdout
        # PENDING at once (no wait here), then the pushed outcome with
        # its token finishes the queue entry
        res = [x for x in r.stdout.splitlines()
               if x.startswith("result op=bill_pay")]
        assert len(res) == 2 and "code=PENDING" in res[0], r.stdout
        assert "code=APPROVED" in res[1] and " token=" in res[1], r.stdout
        assert "queue open=0" in r.stdout, r.stdout
        assert e.s.balance("agent:A3:float") == "8490.00"
        # interactive mode: 10 pay a bill (validated: the customer's
        # name; paid: the token on the receipt), 11 void it (a bill
        # paid is NOT_REVERSIBLE), a meter the biller does not know
        r = subprocess.run(
            [os.path.join(build, "soko-pos"), "interactive", "--server",
             "127.0.0.1:%d" % e.pos_port, "--terminal", "T3", "--key",
             e.keys["T3"].hex(), "--queue",
             os.path.join(e.s.dir, "q3.db")],
            input="10\n%s\n%s\n5.00\n11\n10\n%s\n%s\n5\n" %
                  (POWER, METER, POWER, METER_UNKNOWN),
            capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "customer  JOHN DOE" in r.stdout, r.stdout
        assert "TOKEN" in r.stdout and "APPROVED" in r.stdout, r.stdout
        assert "NOT_REVERSIBLE" in r.stdout, r.stdout
        assert "not a customer of this biller" in r.stdout, r.stdout
        assert e.s.balance("agent:A3:float") == "8485.00"
        e.verify()
    finally:
        e.stop()


def t_pos_bill_advice(build):
    """Bills paid in cash offline (ADVICE_BATCH items of type BILL_PAY):
    each processed like an online BILL_PAY, funded from the agent's float,
    STORED with its BP- reference (or the refusal's code); the token by
    STATUS; a resend is DUPLICATE, one payment; soko-pos accepts a bill
    offline (--offline-floor) and uploads it on reconnect.  Online with
    the bounded wait (pos_bill_wait_ms): BILL_PAY_RESP carries the
    outcome and the token."""
    e = Env(build, bills=True, extra=(("pos_bill_wait_ms", "10000"),))
    try:
        t = e.term("T3")
        good, refused, low = os.urandom(16), os.urandom(16), os.urandom(16)

        def item(txn, amount, biller=POWER, meter=METER, currency=NGN):
            return {1: txn, 2: BILL_PAY, 3: amount, 4: currency, 5: 1,
                    8: biller, 9: meter}

        alone = os.urandom(16)
        batch = {1: [item(good, 150000),
                     item(os.urandom(16), 100, biller="BIL112"),
                     item(os.urandom(16), 100, currency=KES),
                     item(os.urandom(16), 0),
                     item(refused, 20000, meter=METER_REFUSED),
                     item(low, 10 ** 9),
                     {1: os.urandom(16), 2: CASH_IN, 3: 100, 4: NGN, 5: 1,
                      6: OK, 7: "mpesa"},
                     item(alone, 1000, biller="UB157"),
                     item(os.urandom(16), 1000, biller="UB999")]}
        typ, ab = t.request(ADVICE_BATCH, batch)
        assert typ == ADVICE_BATCH | RESP and ab[1] == APPROVED, ab
        codes = [x[1] for x in ab[2]]
        assert codes == [STORED, UNKNOWN_BILLER, 17, AMOUNT_INVALID,
                         STORED, INSUFFICIENT_FLOAT, DECLINED, STORED,
                         UNKNOWN_BILLER], ab
        ref = ab[2][0][3]
        assert ref.startswith("BP-"), ab
        assert 3 not in ab[2][5], ab  # nothing created, no reference
        # the stored bills held from the float at once (the refused
        # one may be refunded already)
        assert e.s.balance("agent:A3:float") in ("8290.00", "8490.00")

        def final(txn):
            # an advised bill is STORED until the biller answers (as
            # the terminal recorded it), never PENDING
            end = time.time() + 20
            while True:
                _, st = t.request(STATUS, {1: txn})
                assert st[1] != PENDING, st
                if st[1] != STORED or time.time() > end:
                    return st
                time.sleep(0.2)

        st = final(good)
        assert st[1] == APPROVED and st[8] == BILL_PAY, st
        assert st.get(11) and st[3] == ref, st
        st = final(refused)
        assert st[1] == DECLINED, st
        st = final(alone)
        assert st[1] == APPROVED and st.get(11), st
        _, rc = t.request(RECEIPT, {1: alone})
        assert "BIL112/UB157" in rc[13], rc  # the biller resolved
        assert e.s.balance("agent:A3:float") == "8490.00"  # refunded
        # the batch again: one payment each, the outcome known now
        typ, ab = t.request(ADVICE_BATCH, {1: batch[1][:1]})
        assert ab[2][0][1] == DUPLICATE and ab[2][0][5] == APPROVED, ab
        assert ab[2][0][3] == ref and ab[2][0][4], ab  # the token
        # the same txn id online: the same payment (DUPLICATE, token)
        _, d = t.request(BILL_PAY, {1: good, 2: 150000, 3: NGN, 4: POWER,
                                    5: METER})
        assert d[1] == DUPLICATE and d[7] == APPROVED and d.get(8), d
        _, d = t.request(BILL_PAY, {1: good, 2: 150001, 3: NGN, 4: POWER,
                                    5: METER})
        assert d[1] == TXN_ID_REUSED, d
        assert e.s.balance("agent:A3:float") == "8490.00"
        assert e.s.balance("biller:flutterwave") == "1510.00"
        t.close()
        # soko-pos: a bill accepted offline, uploaded on reconnect
        q = os.path.join(e.s.dir, "q3.db")
        base = [os.path.join(build, "soko-pos"), "script", "--server",
                "127.0.0.1:%d" % e.pos_port, "--terminal", "T3", "--key",
                e.keys["T3"].hex(), "--queue", q, "--timeout", "30"]
        r = subprocess.run(
            base + ["--offline-floor", "50000"],
            input="disconnect\nbill_pay %s %s 600.00 NGN\n"
                  "bill_pay %s %s 100.00 NGN\nreconnect\nwait\n"
                  % (POWER, METER, POWER, METER),
            capture_output=True, text=True, timeout=120)
        for m in SAN_MARKERS:
            assert m not in r.stderr, r.stderr
        out = r.stdout
        # 600.00 is over the floor: refused offline, nothing queued (a
        # failed line: exit status 1)
        assert r.returncode == 1, out + r.stderr
        assert "code=NONE err=OFFLINE_LIMIT" in out, out
        assert out.count("stored op=bill_pay") == 1, out
        assert "wait ok" in out and "queue open=0" in out, out
        assert "offline=1" in out, out
        line = [x for x in out.splitlines()
                if x.startswith("result op=bill_pay txn=")]
        assert len(line) == 1 and "code=STORED" in line[0], out
        assert "ref=BP-" in line[0] and "offline=1" in line[0], out
        txn = bytes.fromhex(line[0].split(" txn=")[1].split()[0])
        assert e.s.balance("agent:A3:float") == "8390.00"
        t = e.term("T3")
        st = final(txn)
        assert st[1] == APPROVED and st.get(11), st
        # online, within the wait: the outcome and the token answered
        w = os.urandom(16)
        typ, r = t.request(BILL_PAY, {1: w, 2: 5000, 3: NGN, 4: POWER,
                                      5: METER})
        assert typ == BILL_PAY | RESP and r[1] == APPROVED, r
        assert r[3].startswith("BP-") and r.get(8), r
        _, st = t.request(STATUS, {1: w})
        assert st[1] == APPROVED and st[11] == r[8], st
        _, r = t.request(BILL_PAY, {1: os.urandom(16), 2: 5000, 3: NGN,
                                    4: POWER, 5: METER_REFUSED})
        assert r[1] == DECLINED and r[3].startswith("BP-"), r
        # online with the item code alone
        _, r = t.request(BILL_PAY, {1: os.urandom(16), 2: 2000, 3: NGN,
                                    4: "UB157", 5: METER})
        assert r[1] == APPROVED and r.get(8), r
        _, r = t.request(BILL_PAY, {1: os.urandom(16), 2: 2000, 3: NGN,
                                    4: "UB999", 5: METER})
        assert r[1] == UNKNOWN_BILLER and 3 not in r, r
        assert e.s.balance("agent:A3:float") == "8320.00"
        # EOD: the bills that succeeded (the two advised, soko-pos's,
        # the two online), not the failed or refused ones
        mine = [{1: BILL_PAY, 2: NGN, 3: 5,
                 4: 150000 + 1000 + 10000 + 5000 + 2000}]
        typ, eod = t.request(EOD_TOTALS, {1: 1, 2: 1, 3: mine})
        assert typ == EOD_TOTALS | RESP and eod[1] == APPROVED, eod
        assert eod[3] == mine, eod
        t.close()
        # without --offline-floor nothing is accepted offline
        r = subprocess.run(
            base, input="disconnect\nbill_pay %s %s 1.00 NGN\n"
                        % (POWER, METER),
            capture_output=True, text=True, timeout=120)
        assert "stored op=bill_pay" not in r.stdout, r.stdout
        assert "err=OFFLINE_REFUSED" in r.stdout, r.stdout
        e.verify()
    finally:
        e.stop()


TESTS = [t_pos_collect_flow, t_pos_collect_declines,
         t_pos_collect_redelivery, t_pos_collect_kill_duplicate,
         t_pos_collect_faults, t_pos_cash_out, t_pos_collect_merchant,
         t_pos_collect_limits,
         t_pos_collect_soko_pos,
         t_pos_bills, t_pos_cash_in, t_pos_bill_advice]

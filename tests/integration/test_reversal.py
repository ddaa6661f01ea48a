"""test_reversal.py - M-Pesa reversals of collections, end to end against
soko-sandbox (docs/payments.md §M-Pesa reversal): the amount is held from
the merchant when the reversal is created, moved to the provider's
clearing account when Transaction Status shows the receipt reversed (the
collection then reads `reversed`, in the same commit), given back on a
confirmed failure.  A lost answer is queried, never re-sent; results and
status answers need their MAC'd URLs."""
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import time
import urllib.request

from harness import MPESA_ENV, ProvEnv

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sandbox"))
from test_sandbox import security_credential  # noqa: E402

MPESA_PW = "Safaricom999!*!"  # the sandbox's initiator password
OK = "254708374149"
NO_REVERSAL = "254700999001"  # sandbox magic: its reversals fail
SHORTCODE = "174379"


def cents(s):
    a, _, b = s.partition(".")
    return int(a) * 100 + int((b + "00")[:2])


class Env(ProvEnv):
    def __init__(self, build, deadline_s=30, extra=()):
        env = dict(MPESA_ENV)
        env["SOKO_MPESA_INITIATOR_PASSWORD"] = MPESA_PW
        super().__init__(
            build, deadline_s=deadline_s, env=env,
            options=(("mpesa_base_url", None),
                     ("mpesa_initiator_name", "testapi"),
                     ("mpesa_cert_file",
                      lambda sb: os.path.join(sb.tls, "mpesa_cert.pem")),
                     ("prov_first_check_ms", "1000"),
                     ("prov_check_every_ms", "500")) + tuple(extra),
            accounts=(("clearing:mpesa", "provider_clearing", "KES"),
                      ("hold:mpesa", "suspense", "KES", "--floor", "0"),
                      ("merchant:M1", "merchant_payable", "KES", "--floor",
                       "0"),
                      ("merchant:loose", "merchant_payable", "KES")))

    def collected(self, key, amount="150.00", account="merchant:M1",
                  msisdn=OK):
        st, _, d = self.s.request(
            "POST", "/v1/collections",
            {"provider": "mpesa", "msisdn": msisdn, "amount": amount,
             "currency": "KES", "account": account},
            headers={"Idempotency-Key": key})
        assert st == 202, (st, d)
        p = self.wait_final(json.loads(d)["ref"])
        assert p["state"] == "succeeded" and p["receipt"], p
        return p

    def reverse(self, ref, key):
        return self.s.request("POST", "/v1/payments/%s/reversal" % ref,
                              headers={"Idempotency-Key": key})

    def bal(self, code):
        return cents(self.s.balance(code))

    def sb_reversals(self):
        return self.sb.ctl("GET", "/stats")["requests"].get(
            "mpesa.reversal", 0)

    def sb_state(self, receipt):
        return [c for c in self.sb.ledger()["charges"]
                if c.get("alt_ref") == receipt][0]["state"]


def expect(resp, status, code=None):
    st, _, data = resp
    assert st == status, "want %d got %d: %s" % (status, st, data)
    if code is not None:
        assert json.loads(data).get("error") == code, data
    return json.loads(data) if data else None


def reversed_ok(e, p, key):
    """Reverses collection p and waits: the money and both states."""
    r = expect(e.reverse(p["ref"], key), 202)
    assert r["kind"] == "reversal" and r["reverses"] == p["ref"], r
    # named by the receipt it reverses
    assert r["ref"] == "rev:" + p["receipt"] and r["amount"] == p["amount"]
    r = e.wait_final(r["ref"])
    assert r["state"] == "succeeded", r
    assert e.payment(p["ref"])["state"] == "reversed"
    assert e.sb_state(p["receipt"]) == "reversed"
    return r


def t_reversal_ok(build):
    e = Env(build)
    try:
        p = e.collected("c1")
        q = e.collected("c2", amount="20.00")
        assert e.bal("merchant:M1") == 17000
        r = expect(e.reverse(p["ref"], "r1"), 202)
        # held from the merchant in the commit that created it
        assert e.bal("merchant:M1") == 2000 and e.bal("hold:mpesa") == 15000
        r = e.wait_final(r["ref"])
        assert r["state"] == "succeeded", r
        assert e.payment(p["ref"])["state"] == "reversed"
        assert e.sb_state(p["receipt"]) == "reversed"
        assert e.bal("hold:mpesa") == 0 and e.bal("merchant:M1") == 2000
        assert e.bal("clearing:mpesa") == -2000  # only q remains
        # repeats: same key, same answer; another key: refused
        st, h, d = e.reverse(p["ref"], "r1")
        assert st == 200 and h.get("idempotent-replayed") == "true", d
        expect(e.reverse(p["ref"], "r2"), 409, "reversal_exists")
        # bad requests change nothing
        expect(e.reverse("NOSUCHREF", "r3"), 404, "payment_unknown")
        expect(e.s.request("POST", "/v1/payments/%s/reversal" % q["ref"]),
               400)
        expect(e.s.request("GET", "/v1/payments/%s/reversal" % q["ref"]),
               405, "method_not_allowed")
        expect(e.reverse(r["ref"], "r4"), 422, "reversal_unsupported")
        # the merchant cannot fund it: refused, nothing created
        st, _, d = e.s.request(
            "POST", "/v1/movements",
            {"type": "adjustment", "currency": "KES", "amount": "15.00",
             "debit": "merchant:M1", "credit": "clearing:mpesa"},
            headers={"Idempotency-Key": "drain"})
        assert st in (200, 201), (st, d)
        expect(e.reverse(q["ref"], "r5"), 422, "insufficient_funds")
        expect(e.s.request("GET", "/v1/payments/rev:" + q["receipt"]), 404)
        # without a floor the balance is checked at creation
        w = e.collected("c3", amount="10.00", account="merchant:loose")
        st, _, d = e.s.request(
            "POST", "/v1/movements",
            {"type": "adjustment", "currency": "KES", "amount": "1.00",
             "debit": "merchant:loose", "credit": "clearing:mpesa"},
            headers={"Idempotency-Key": "drain2"})
        assert st in (200, 201), (st, d)
        expect(e.reverse(w["ref"], "r6"), 422, "insufficient_funds")
        # a collection whose ref is 64 bytes (a 60-byte key) too
        long_ = e.collected("L" * 60, amount="5.00")
        assert len(long_["ref"]) == 64, long_
        reversed_ok(e, long_, "r7")
        assert e.sb_reversals() == 2
        e.verify()
    finally:
        e.stop()


def t_reversal_not_a_payout(build):
    """A reversal gives the customer their own payment back: the MSISDN
    payout limits (docs/payments.md §9.5) do not apply to it."""
    e = Env(build)
    try:
        p = e.collected("lim", amount="300.00")
        e.s.ctl("limit", "set", "msisdn", OK, "KES", "--per-txn", "10.00",
                "--daily", "10.00")
        time.sleep(1.2)  # rules reach sokod within a second
        reversed_ok(e, p, "lim-r")
        e.verify()
    finally:
        e.stop()


def t_reversal_faults(build):
    """A lost answer (reset, timeout, 500 after commit) is queried by
    Transaction Status, never sent twice; a missing result is not
    needed."""
    e = Env(build, extra=(("prov_timeout_ms", "1500"),))
    try:
        pays = [e.collected("f%d" % i, amount="10.00") for i in range(4)]
        for i, fault in enumerate(("reset_after_commit", "timeout",
                                   "error500_after_commit", "no_callback")):
            e.sb.faults([{"provider": "mpesa", "op": "reversal",
                          "fault": fault, "count": 1}])
            reversed_ok(e, pays[i], "k%d" % i)
            assert e.sb_reversals() == i + 1, (fault, e.sb_reversals())
        assert e.bal("merchant:M1") == 0 and e.bal("hold:mpesa") == 0
        assert e.bal("clearing:mpesa") == 0
        e.verify()
    finally:
        e.stop()


def sandbox_reverse(e, receipt, amount):
    """Reverses receipt at the sandbox behind soko's back."""
    ctx = ssl.create_default_context(cafile=e.sb.ca)
    basic = base64.b64encode(("%s:%s" % (
        MPESA_ENV["SOKO_MPESA_CONSUMER_KEY"],
        MPESA_ENV["SOKO_MPESA_CONSUMER_SECRET"])).encode()).decode()
    rq = urllib.request.Request(
        e.sb.base + "/oauth/v1/generate?grant_type=client_credentials",
        headers={"Authorization": "Basic " + basic})
    tok = json.load(urllib.request.urlopen(rq, context=ctx))["access_token"]
    body = {"Initiator": "testapi",
            "SecurityCredential": security_credential(e.sb.tls, MPESA_PW),
            "CommandID": "TransactionReversal", "TransactionID": receipt,
            "Amount": amount, "ReceiverParty": SHORTCODE,
            "RecieverIdentifierType": "11",
            # a URL that answers (404): a refused connection leaks in
            # the sandbox's libevent (free_on_completion on failure)
            "ResultURL": e.base + "/v1/callbacks/none",
            "QueueTimeOutURL": e.base + "/v1/callbacks/none",
            "Remarks": "behind"}
    rq = urllib.request.Request(
        e.sb.base + "/mpesa/reversal/v1/request",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + tok,
                 "Content-Type": "application/json"})
    assert json.load(urllib.request.urlopen(rq, context=ctx))[
        "ResponseCode"] == "0"


def alerts_total(e):
    st, _, d = e.s.request("GET", "/metrics")
    assert st == 200, st
    for line in d.decode().splitlines():
        if line.startswith("soko_provider_alerts_total"):
            return float(line.split()[-1])
    return 0.0


def t_reversal_forged(build):
    """Results are callbacks: a forged one moves nothing; a failure
    confirmed by Transaction Status gives the hold back."""
    e = Env(build)
    try:
        p = e.collected("g1")
        q = e.collected("g2", amount="30.00")
        # reversed already at M-Pesa (not by soko): M-Pesa answers the
        # reversal with R000003, and status shows it reversed; that is
        # M-Pesa's truth: the reversal reads succeeded
        sandbox_reverse(e, q["receipt"], "30")
        reversed_ok(e, q, "g2r")
        # forged results: wrong token, wrong MAC, malformed: 404/400
        e.sb.faults([{"provider": "mpesa", "op": "reversal",
                      "fault": "delay", "ms": 1500, "count": 1}])
        r = expect(e.reverse(p["ref"], "g1r"), 202)
        ref = e.payment(r["ref"])["reference"]

        def cb(path, body):
            return e.s.request("POST", "/v1/callbacks/mpesa/" + path, body,
                               auth=False,
                               headers={"Content-Type": "application/json"})
        res = {"Result": {"ResultType": 0, "ResultCode": 0,
                          "ResultDesc": "x", "OriginatorConversationID": "o",
                          "ConversationID": "c", "TransactionID": "FAKE",
                          "ResultParameters": {"ResultParameter": [
                              {"Key": "OriginalTransactionID",
                               "Value": p["receipt"]},
                              {"Key": "Amount", "Value": 150}]}}}
        expect(cb("reversal/%s/%s/result/%s" % ("0" * 48, ref, "0" * 32),
                  res), 404, "not_found")
        expect(cb("reversal/%s/%s/result/%s" % (e.token, ref, "0" * 32),
                  res), 404, "not_found")
        key = hashlib.sha256(("soko mpesa status|%s|%s|%s" % (
            e.token, MPESA_PW, MPESA_ENV["SOKO_MPESA_CONSUMER_SECRET"])
        ).encode()).digest()

        def mac(msg):
            return hmac.new(key, msg.encode(),
                            hashlib.sha256).hexdigest()[:32]
        good = "reversal/%s/%s/result/%s" % (
            e.token, ref, mac("reversal|%s|result|" % ref))
        expect(cb(good, {"Result": {}}), 400, "callback_field_missing")
        # a status for another receipt at a right URL proves nothing
        st = {"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "x",
                         "OriginatorConversationID": "o",
                         "ConversationID": "c", "TransactionID": "T",
                         "ResultParameters": {"ResultParameter": [
                             {"Key": "ReceiptNo", "Value": q["receipt"]},
                             {"Key": "TransactionStatus",
                              "Value": "Reversed"},
                             {"Key": "Amount", "Value": 150}]}}}
        path = "revstatus/%s/%s/%s/p/%s" % (
            e.token, ref, p["receipt"],
            mac("revstatus|%s|%s|p" % (ref, p["receipt"])))
        expect(cb(path, st), 422, "status_not_this_payment")
        assert e.payment(p["ref"])["state"] == "succeeded"
        r = e.wait_final(r["ref"])
        assert r["state"] == "succeeded", r
        assert e.payment(p["ref"])["state"] == "reversed"
        assert e.bal("merchant:M1") == 0 and e.bal("hold:mpesa") == 0
        assert e.bal("clearing:mpesa") == 0
        # a final state is never flipped: a failure result (or queue
        # timeout) for the succeeded reversal is recorded with an alert
        alerts = alerts_total(e)
        fail = {"Result": {"ResultType": 0, "ResultCode": "R000002",
                           "ResultDesc": "x", "OriginatorConversationID": "o",
                           "ConversationID": "c", "TransactionID": "T"}}
        expect(cb(good, fail), 200)
        to = "reversal/%s/%s/timeout/%s" % (
            e.token, ref, mac("reversal|%s|timeout|" % ref))
        expect(cb(to, fail), 200)
        time.sleep(1.0)
        assert e.payment(r["ref"])["state"] == "succeeded"
        assert e.payment(p["ref"])["state"] == "reversed"
        assert alerts_total(e) > alerts, (alerts, alerts_total(e))
        assert e.bal("merchant:M1") == 0 and e.bal("hold:mpesa") == 0
        e.verify()
    finally:
        e.stop()


def t_reversal_failed(build):
    """M-Pesa refuses the reversal: its result says so, Transaction
    Status confirms the payment stands, the hold goes back to the
    merchant.  Without the result (no_callback) a refusal is never
    assumed: unknown at the deadline, the hold kept."""
    e = Env(build, deadline_s=6)
    try:
        p = e.collected("n1", amount="40.00", msisdn=NO_REVERSAL)
        q = e.collected("n2", amount="25.00", msisdn=NO_REVERSAL)
        r = expect(e.reverse(p["ref"], "n1r"), 202)
        assert e.bal("merchant:M1") == 2500 and e.bal("hold:mpesa") == 4000
        r = e.wait_final(r["ref"])
        assert r["state"] == "failed", r
        assert r["result_code"].startswith("fail:1"), r
        assert e.payment(p["ref"])["state"] == "succeeded"
        assert e.sb_state(p["receipt"]) == "succeeded"
        assert e.bal("merchant:M1") == 6500 and e.bal("hold:mpesa") == 0
        # the same refusal without its result: not assumed
        e.sb.faults([{"provider": "mpesa", "op": "reversal",
                      "fault": "no_callback", "count": 1}])
        s = expect(e.reverse(q["ref"], "n2r"), 202)
        s = e.wait_final(s["ref"], timeout=20)
        assert s["state"] == "unknown", s
        assert e.payment(q["ref"])["state"] == "succeeded"
        assert e.bal("merchant:M1") == 4000 and e.bal("hold:mpesa") == 2500
        assert e.sb_reversals() == 2
        e.verify()
    finally:
        e.stop()


TESTS = [t_reversal_ok, t_reversal_not_a_payout, t_reversal_faults,
         t_reversal_forged, t_reversal_failed]
